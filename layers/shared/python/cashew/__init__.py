"""Cashew: the shared layer of every Lambda function (logic, models and data access)."""
