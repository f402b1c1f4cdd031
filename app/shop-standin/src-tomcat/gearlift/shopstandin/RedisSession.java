package gearlift.shopstandin;

import java.io.Serializable;
import org.apache.catalina.session.StandardSession;

/**
 * A StandardSession of {@link RedisSessionManager}: every change that ends up in the stored form
 * (an attribute set or removed, the timeout) is written through to the store before the call
 * returns.
 */
public class RedisSession extends StandardSession {
    private static final long serialVersionUID = 1L;

    public RedisSession(RedisSessionManager manager) {
        super(manager);
    }

    private RedisSessionManager store() {
        return (RedisSessionManager) manager;
    }

    /** Read from the store by a request: joined by the client, and accessed now (the TTL is the idle timer). */
    void loaded() {
        isNew = false;
        long now = System.currentTimeMillis();
        thisAccessedTime = now;
        lastAccessedTime = now;
    }

    private boolean writable() {
        return manager != null && isValid && !expiring && id != null;
    }

    @Override
    public void setAttribute(String name, Object value, boolean notify) {
        if (value != null && manager != null && !manager.willAttributeDistribute(name, value)) {
            // Refused now rather than silently missing on the next host.
            throw new IllegalArgumentException("session attribute " + name + " ("
                    + value.getClass().getName() + ") cannot be kept in the session store: not "
                    + (value instanceof Serializable ? "admitted by sessionAttributeValueClassNameFilter"
                            : "Serializable"));
        }
        super.setAttribute(name, value, notify);
        if (value != null && writable()) {
            store().save(this);
        }
    }

    @Override
    public void removeAttribute(String name, boolean notify) {
        super.removeAttribute(name, notify);
        if (writable()) {
            store().save(this);
        }
    }

    @Override
    public void setMaxInactiveInterval(int interval) {
        int before = maxInactiveInterval;
        super.setMaxInactiveInterval(interval);
        if (interval != before && writable()) {
            store().save(this);
        }
    }
}
