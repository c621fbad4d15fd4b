"""The sandbox: a simulated company behind local stand-ins of the CRM, marketing automation and website."""
