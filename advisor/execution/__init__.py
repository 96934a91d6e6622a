"""Moving VMs for real: the Hypervisor protocol and its libvirt adapter, the monitor's pure step function, and
the executor that runs one loop per migration within concurrency limits."""
