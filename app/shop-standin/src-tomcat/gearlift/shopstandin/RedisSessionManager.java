package gearlift.shopstandin;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputFilter;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Path;
import java.util.function.IntSupplier;
import java.util.regex.Pattern;
import org.apache.catalina.Context;
import org.apache.catalina.LifecycleException;
import org.apache.catalina.LifecycleState;
import org.apache.catalina.Session;
import org.apache.catalina.session.ManagerBase;
import org.apache.catalina.session.StandardSession;
import org.apache.catalina.util.CustomObjectInputStream;
import org.apache.juli.logging.Log;
import org.apache.juli.logging.LogFactory;

/**
 * A Tomcat session manager that keeps every HttpSession in Redis (ElastiCache in AWS), so a host
 * that stops or is replaced loses no session: the next request, on any host, reads it from there.
 * The web application keeps using the plain HttpSession API.
 *
 * <ul>
 *   <li>Where: the same env file and keys as the jar ({@code SESSION_STORE=redis},
 *       {@code SESSION_REDIS_HOST/PORT/TLS/TLS_CA/TOKEN}), written at boot by the java_app role's
 *       secret unit and read once when the context starts; the token is never in context.xml nor
 *       in a log. The same RESP client as the jar ({@link RedisClient}: TLS 1.2+ with the chain and
 *       host name verified, AUTH, a few pooled connections, one retry on a new connection).</li>
 *   <li>Write-through: a session is written ({@code SET key value EX <max inactive interval>}) when
 *       it is created, when its id changes, when an attribute is set or removed, and when its
 *       timeout changes, before the call returns: an attribute set during a request is in the
 *       store before the response goes out. Like Tomcat's replicating managers, a value changed in
 *       place must be set again ({@code setAttribute}) to be written.</li>
 *   <li>No local copy outlives a request: {@link #findSession} reads the store every time (so a
 *       change another host wrote is seen) and refreshes the key's TTL (the idle timeout is the
 *       key's TTL: Redis expires idle sessions). Invalidation deletes the key.</li>
 *   <li>Reading is filtered: the bytes go through Tomcat's {@link CustomObjectInputStream} with
 *       this manager's {@code sessionAttributeValueClassNameFilter} (a default admitting only the
 *       JDK types Tomcat's own session fields use; set it to the application's value classes) and
 *       JDK limits (depth, references, size). A value that is not Serializable, or not admitted by
 *       the filter, is refused when it is set (IllegalArgumentException), not lost later.</li>
 *   <li>When the store cannot be reached, {@code getSession} and {@code setAttribute} throw a
 *       {@link SessionStoreUnavailableException} (an UncheckedIOException): the request fails
 *       (503 through {@link SessionStoreValve}, or the application's own answer) instead of
 *       silently starting an empty session over the client's cookie.</li>
 * </ul>
 *
 * Serialised with Tomcat's own session format (StandardSession.writeObjectData), under
 * {@code <keyPrefix><session id>} (default {@code gl:tsess:}; the jar's keys are {@code gl:sess:}).
 */
public class RedisSessionManager extends ManagerBase {
    /** Default filter: what StandardSession itself writes besides the attributes. */
    static final String BASE_FILTER = "java\\.lang\\.(?:Boolean|Integer|Long|Number|String)";
    /** Session ids as Tomcat issues them (hex, optional .jvmRoute); anything else is never looked up. */
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9_.-]{16,128}");
    /** Longest TTL, for a session that never times out (max inactive interval &lt;= 0). */
    static final int MAX_TTL = 604800;
    private static final ObjectInputFilter LIMITS =
            ObjectInputFilter.Config.createFilter("maxdepth=20;maxrefs=10000;maxbytes=1048576;maxarray=100000");
    private static final Log log = LogFactory.getLog(RedisSessionManager.class);
    /**
     * Servlet context attribute: a {@link java.util.function.IntSupplier} of the store's key count
     * (every host's sessions), published at start so the application can report it (a JDK type, so
     * it crosses the class loader boundary).
     */
    public static final String LIVE_ATTRIBUTE = "gearlift.sessionStore.live";

    private String envFile = envDefault();
    private String keyPrefix = "gl:tsess:";
    private int poolSize = 8;
    private volatile RedisClient redis;

    public RedisSessionManager() {
        setSessionAttributeValueClassNameFilter(BASE_FILTER);
        setWarnOnSessionAttributeFilterFailure(true);
    }

    private static String envDefault() {
        String v = System.getenv("SHOP_ENV_FILE");
        return v == null || v.isBlank() ? "/run/gearlift/db.env" : v.strip();
    }

    // ------------------------------------------------------------ configuration (context.xml)

    public String getEnvFile() {
        return envFile;
    }

    /** The env file with the SESSION_* keys (default: $SHOP_ENV_FILE, else /run/gearlift/db.env). */
    public void setEnvFile(String envFile) {
        this.envFile = envFile;
    }

    public String getKeyPrefix() {
        return keyPrefix;
    }

    public void setKeyPrefix(String keyPrefix) {
        this.keyPrefix = keyPrefix;
    }

    public int getPoolSize() {
        return poolSize;
    }

    public void setPoolSize(int poolSize) {
        this.poolSize = poolSize;
    }

    @Override
    public String getName() {
        return "RedisSessionManager";
    }

    // ------------------------------------------------------------ lifecycle

    @Override
    protected synchronized void startInternal() throws LifecycleException {
        super.startInternal();
        if (!keyPrefix.matches("[A-Za-z0-9:_.-]{1,64}")) {
            throw new LifecycleException("RedisSessionManager: keyPrefix must match [A-Za-z0-9:_.-]{1,64}");
        }
        if (poolSize < 1 || poolSize > 256) {
            throw new LifecycleException("RedisSessionManager: poolSize must be 1..256");
        }
        RedisConfig cfg;
        try {
            cfg = RedisConfig.from(EnvFile.read(Path.of(envFile)).values);
        } catch (IOException e) {
            throw new LifecycleException("RedisSessionManager: cannot read " + envFile + " ("
                    + e.getClass().getSimpleName() + ")");
        } catch (RedisConfig.Invalid e) {
            throw new LifecycleException("RedisSessionManager: " + envFile + ": " + e.getMessage());
        }
        if (cfg == null) {
            // Configured for a store but the env file says memory: refuse rather than lose carts quietly.
            throw new LifecycleException("RedisSessionManager: " + envFile
                    + " does not say SESSION_STORE=redis (the session store's settings are missing)");
        }
        try {
            redis = new RedisClient(cfg, poolSize);
        } catch (IOException e) {
            throw new LifecycleException("RedisSessionManager: " + e.getMessage());
        }
        try {
            redis.call(RedisClient.bytes("PING"));
        } catch (IOException e) {
            // Not fatal (the store may come up after Tomcat): requests needing a session fail until then.
            log.warn("session store not reachable yet (" + e.getMessage() + ")");
        }
        log.info("sessions of " + contextName() + " in the session store: " + cfg);
        getContext().getServletContext().setAttribute(LIVE_ATTRIBUTE, (IntSupplier) this::storeSize);
        setState(LifecycleState.STARTING);
    }

    @Override
    protected synchronized void stopInternal() throws LifecycleException {
        setState(LifecycleState.STOPPING);
        // Nothing to write or expire: every session is in the store already and stays there.
        RedisClient r = redis;
        redis = null;
        if (r != null) {
            r.close();
        }
        super.stopInternal();
    }

    private String contextName() {
        Context c = getContext();
        return c == null ? "?" : (c.getName().isEmpty() ? "ROOT" : c.getName());
    }

    /** Sessions are never kept here: nothing to load at start. */
    @Override
    public void load() {}

    /** Sessions are never kept here: nothing to save at stop. */
    @Override
    public void unload() {}

    // ------------------------------------------------------------ sessions

    @Override
    protected StandardSession getNewSession() {
        return new RedisSession(this);
    }

    /** Called with the new id (creation, id change): written to the store, not kept locally. */
    @Override
    public void add(Session session) {
        if (session.isValid() && session.getIdInternal() != null) {
            save((RedisSession) session);
        }
    }

    /** Invalidation, expiry or an id change: the key goes. */
    @Override
    public void remove(Session session, boolean update) {
        super.remove(session, update);
        String id = session.getIdInternal();
        if (id != null && ID.matcher(id).matches()) {
            try {
                client().call(RedisClient.bytes("DEL"), key(id));
            } catch (IOException e) {
                // The TTL removes it in the end; an invalidated session must not look alive, so fail loudly.
                throw new SessionStoreUnavailableException(e);
            }
        }
    }

    /** The session from the store (a fresh copy, its idle timer restarted), or null. */
    @Override
    public Session findSession(String id) throws IOException {
        if (id == null || !ID.matcher(id).matches()) {
            return null;
        }
        byte[] key = key(id);
        Object r;
        try {
            r = client().call(RedisClient.bytes("GET"), key);
        } catch (IOException e) {
            throw new SessionStoreUnavailableException(e);
        }
        if (!(r instanceof byte[])) {
            return null;
        }
        RedisSession s = decode((byte[]) r);
        if (s == null || !id.equals(s.getIdInternal())) {
            return null;
        }
        try {
            client().call(RedisClient.bytes("EXPIRE"), key, RedisClient.bytes(Integer.toString(ttl(s))));
        } catch (IOException e) {
            throw new SessionStoreUnavailableException(e);
        }
        return s;
    }

    /** No session lives here between requests. */
    @Override
    public Session[] findSessions() {
        return new Session[0];
    }

    /** Idle sessions expire in the store (TTL), not here. */
    @Override
    public void processExpires() {}

    @Override
    public boolean willAttributeDistribute(String name, Object value) {
        if (value != null && !(value instanceof java.io.Serializable)) {
            return false;
        }
        return super.willAttributeDistribute(name, value);
    }

    /** Writes the session through (SET ... EX): the caller fails when the store cannot be reached. */
    void save(RedisSession s) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(b)) {
            s.writeObjectData(out);
        } catch (IOException e) {
            throw new IllegalStateException("session of " + contextName() + " could not be serialised", e);
        }
        try {
            client().call(RedisClient.bytes("SET"), key(s.getIdInternal()), b.toByteArray(), RedisClient.bytes("EX"),
                    RedisClient.bytes(Integer.toString(ttl(s))));
        } catch (IOException e) {
            throw new SessionStoreUnavailableException(e);
        }
    }

    private RedisSession decode(byte[] data) {
        ClassLoader loader = getContext().getLoader() == null ? Thread.currentThread().getContextClassLoader()
                : getContext().getLoader().getClassLoader();
        try (ObjectInputStream in = new CustomObjectInputStream(new ByteArrayInputStream(data), loader,
                getContext().getLogger(), getSessionAttributeValueClassNamePattern(),
                getWarnOnSessionAttributeFilterFailure())) {
            in.setObjectInputFilter(LIMITS);
            RedisSession s = (RedisSession) createEmptySession();
            s.readObjectData(in);
            s.loaded();
            return s;
        } catch (IOException | ClassNotFoundException | RuntimeException e) {
            log.warn("a stored session could not be read (" + e.getClass().getSimpleName() + ")");
            return null;
        }
    }

    /** Keys in the store (DBSIZE, O(1)); 0 when it cannot be reached. */
    int storeSize() {
        try {
            Object r = client().call(RedisClient.bytes("DBSIZE"));
            return r instanceof Long ? (int) Math.min(Integer.MAX_VALUE, (Long) r) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    private static int ttl(Session s) {
        int i = s.getMaxInactiveInterval();
        return i > 0 && i < MAX_TTL ? i : MAX_TTL;
    }

    private byte[] key(String id) {
        return RedisClient.bytes(keyPrefix + id);
    }

    private RedisClient client() throws IOException {
        RedisClient r = redis;
        if (r == null) {
            throw new IOException("session manager not started");
        }
        return r;
    }
}
