-- Planning decides in Go; the database stores, selects and streams. Each fact of a work item
-- that SQL selects or orders by is a column the Go code sets, never a field of the item's JSON:
-- the failure of a failed item, the seat order of a seat candidate (plan.SeatOrder: bytes whose
-- order is plan.SeatKey.Less, NULL when the item takes no new seat) and the item order
-- (plan.ItemOrder). The seat order's parts (priority, sort name, new seats) go: SQL no longer
-- compares them.
ALTER TABLE work_items
    ADD COLUMN failure_type    text  NOT NULL DEFAULT '',
    ADD COLUMN failure_product text  NOT NULL DEFAULT '',
    ADD COLUMN failure_message text  NOT NULL DEFAULT '',
    ADD COLUMN seat_key        bytea,
    ADD COLUMN order_key       bytea NOT NULL DEFAULT '';

-- One-time conversion of the failed items planned before this migration (kept for inspection).
-- Their order_key stays empty: they are listed in seq order.
UPDATE work_items SET
    failure_type    = COALESCE(item->'failure'->>'type', ''),
    failure_product = COALESCE(item->'failure'->>'product', ''),
    failure_message = COALESCE(item->'failure'->>'message', '')
WHERE action = 'fail';

ALTER TABLE work_items DROP COLUMN seat_priority, DROP COLUMN sort_name, DROP COLUMN new_seats;
