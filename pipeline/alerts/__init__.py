"""SLA and operator alerts: notices composed from the warehouse and delivered once through an outbox."""
