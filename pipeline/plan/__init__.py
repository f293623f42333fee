"""From a workflow file to a validated ``Workflow``: its axes, coordinates and block/task plan."""
