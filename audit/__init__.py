"""The audit trail: who changed what HQ and owners steer the program by, and when."""
