-- Every process caches API keys and collection schemas; these triggers tell all of them, through
-- PostgreSQL NOTIFY, when one changes (a revoked key, a replaced schema), so the caches are
-- dropped at once on every replica. A notification is sent when the changing transaction
-- commits, never before.

CREATE FUNCTION strongroom_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_data record;
BEGIN
    row_data := COALESCE(NEW, OLD);
    IF TG_TABLE_NAME = 'api_keys' THEN
        PERFORM pg_notify('strongroom_changes', 'api_key:' || row_data.id);
    ELSIF TG_TABLE_NAME = 'collections' THEN
        PERFORM pg_notify('strongroom_changes',
                          'collection:' || row_data.tenant_id || ':' || row_data.name);
    ELSIF TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('strongroom_changes', 'tenant:' || row_data.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION strongroom_notify_change();
CREATE TRIGGER collections_changed AFTER INSERT OR UPDATE OR DELETE ON collections
    FOR EACH ROW EXECUTE FUNCTION strongroom_notify_change();
CREATE TRIGGER tenants_changed AFTER UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION strongroom_notify_change();
