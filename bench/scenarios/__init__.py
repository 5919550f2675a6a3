"""The bench's scenarios, one module each, run in order by ``bench.run``."""
