"""The waybill workflow's tasks (Step Functions -> Lambda)."""
