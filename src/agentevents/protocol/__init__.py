"""The wire protocol as pure values: envelopes, client messages, codes, replay rules. No I/O here."""
