package gearlift.shopstandin;

import java.io.Serializable;

/**
 * An HTTP session as the shop logic sees it: the jar keeps them in memory itself
 * ({@link JarSessions}), the WAR uses the servlet container's HttpSession (so Tomcat's session
 * manager, e.g. an external store, decides where they live). Values must be Serializable.
 */
interface ShopSession {
    Object get(String key);

    /** Stores (or re-stores after a change, so a replicating session manager sees it) a value. */
    void put(String key, Serializable value);
}
