"""Which stages run in which order. Nothing else lives here."""
