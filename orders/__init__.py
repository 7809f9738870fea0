"""O2O orders (老客回老店,新客就近派): the brand's online orders routed to the partner
store that delivers them, accepted, declined or timed out, and delivered as that
store's purchase."""
