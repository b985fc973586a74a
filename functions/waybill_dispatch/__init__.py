"""SQS waybill requests -> one waybill workflow execution per shipment."""
