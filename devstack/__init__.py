"""The embedded stack for development and tests: nx-27017, the Tansu broker, and the services."""
