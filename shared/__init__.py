"""What every Portside service needs: settings, database, messaging, Docker."""
