"""The APScheduler process: triggers that only enqueue actors, leader-elected."""
