"""Model back ends behind one contract: send messages, get a Reply."""
