-- Seats are looked up per user when a user is saved or suspended; the primary key leads with
-- the product, so without this index each save scanned every seat of the organization.
CREATE INDEX seats_by_user ON seats (org, external_id);
