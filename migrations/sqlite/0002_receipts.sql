-- Version 2: end-to-end receipts. The broker's PUBACK (published_at) says the broker has
-- an event; the uplink's receipt (confirmed_at) says MySQL has it. Events published but
-- not confirmed in time are sent again (the uplink ignores duplicates).

ALTER TABLE outbox ADD COLUMN confirmed_at TEXT;
CREATE INDEX idx_outbox_unconfirmed ON outbox(published_at)
    WHERE published_at IS NOT NULL AND confirmed_at IS NULL;
