"""From a grid to finished runs: the plan, the jobs, and the backends that run them (here, workers, a cluster)."""
