"""Pure domain: models, the canonical status model, carrier selection and stall rules. No I/O."""
