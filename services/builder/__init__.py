"""Builder: turns a detection into a Dockerfile, a compose file and a .dockerignore, and builds the image."""
