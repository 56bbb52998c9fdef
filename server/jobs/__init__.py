"""The job lifecycle: states, creation and planning, shard protocol, finalization."""
