"""The controller runtime: informers, work queues, workers, leader election, metrics and health."""
