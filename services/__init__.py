"""Portside's services. A service never imports another service; they meet in `shared` and on NATS."""
