"""Starting the services as real processes for end-to-end tests: devstack/processes.py (bench/ uses it too)."""

from devstack.processes import ServiceProcesses, free_port_base, service_processes, write_alliance

__all__ = ["ServiceProcesses", "free_port_base", "service_processes", "write_alliance"]
