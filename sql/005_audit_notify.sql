-- 005: tell waiting API requests (Prefer: wait=N, fcgi/commands.c) that
-- verdicts were recorded.
--
-- One notification per INSERT statement on channel pv_audit, empty
-- payload: a waiter looks its own event id up again.  Per statement
-- rather than per row because the appender records a whole batch in one
-- statement, and a waiter needs the news, not the list.  Delivered at
-- commit, so a waiter never looks before the row is visible.

CREATE FUNCTION audit_log_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('pv_audit', '');
	RETURN NULL;
END
$$;

CREATE TRIGGER audit_log_notify AFTER INSERT ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_notify();
