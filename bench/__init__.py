"""Load benchmarks: the load tool and the scenarios that drive the gateway and its peers."""
