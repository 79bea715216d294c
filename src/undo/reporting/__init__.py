"""Results from the output tree: results.json and tables, the paper's figures, wandb dashboards, replicates."""
