"""provena_like."""
