-- Seats in use are counted on the license row, kept by triggers on seats, and the database
-- itself refuses more seats than bought: a reservation is one insert, no count(*) over all
-- holders while the product is locked.
ALTER TABLE licenses ADD COLUMN used int NOT NULL DEFAULT 0;
UPDATE licenses l SET used = (SELECT count(*) FROM seats s WHERE s.org = l.org AND s.product = l.product);
ALTER TABLE licenses ADD CONSTRAINT seats_not_exceeded CHECK (used <= seats);

CREATE FUNCTION count_seats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE licenses SET used = used + 1 WHERE org = NEW.org AND product = NEW.product;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no license for product %', NEW.product USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    UPDATE licenses SET used = used - 1 WHERE org = OLD.org AND product = OLD.product;
    RETURN OLD;
END $$;

CREATE TRIGGER seats_counted AFTER INSERT OR DELETE ON seats FOR EACH ROW EXECUTE FUNCTION count_seats();
