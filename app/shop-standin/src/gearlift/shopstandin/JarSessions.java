package gearlift.shopstandin;

import java.io.Serializable;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * In-memory HTTP sessions of the jar, as a servlet container keeps them by default: lost when the
 * process stops. Ids are 32 random bytes (base64url), only ever issued here: an unknown id from a
 * client is ignored, never adopted (no session fixation).
 */
final class JarSessions implements SessionStore {
    static final String COOKIE = "JSESSIONID";
    static final Pattern ID = Pattern.compile("[A-Za-z0-9_-]{43}");

    private final long timeoutNanos;
    private final int max;
    private final SecureRandom random = new SecureRandom();
    private final ConcurrentHashMap<String, Entry> sessions = new ConcurrentHashMap<>();
    private final AtomicInteger live = new AtomicInteger();
    private final AtomicLong created = new AtomicLong();
    private final AtomicLong expired = new AtomicLong();
    private final ScheduledExecutorService reaper;

    static final class Entry implements SessionStore.Stored {
        final String id;
        private final Map<String, Object> values = new ConcurrentHashMap<>();
        private volatile long lastAccess = System.nanoTime();

        Entry(String id) {
            this.id = id;
        }

        @Override
        public String id() {
            return id;
        }

        @Override
        public Object get(String key) {
            return values.get(key);
        }

        @Override
        public void put(String key, Serializable value) {
            values.put(key, value);
        }
    }

    JarSessions(int timeoutSeconds, int max) {
        this.timeoutNanos = TimeUnit.SECONDS.toNanos(timeoutSeconds);
        this.max = max;
        long every = Math.max(1, Math.min(30, timeoutSeconds / 2));
        reaper = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "session-reaper");
            t.setDaemon(true);
            return t;
        });
        reaper.scheduleWithFixedDelay(this::sweep, every, every, TimeUnit.SECONDS);
    }

    /** The live session with this id (its last access refreshed), or null. */
    @Override
    public Entry find(String id) {
        if (id == null || !ID.matcher(id).matches()) {
            return null;
        }
        Entry e = sessions.get(id);
        if (e == null) {
            return null;
        }
        long now = System.nanoTime();
        if (now - e.lastAccess > timeoutNanos) {
            drop(id, e);
            return null;
        }
        e.lastAccess = now;
        return e;
    }

    /** A new session, or null when the limit is reached. */
    @Override
    public Entry create() {
        if (live.incrementAndGet() > max) {
            live.decrementAndGet();
            sweep();
            return null;
        }
        byte[] b = new byte[32];
        random.nextBytes(b);
        Entry e = new Entry(Base64.getUrlEncoder().withoutPadding().encodeToString(b));
        sessions.put(e.id, e);
        created.incrementAndGet();
        return e;
    }

    private void drop(String id, Entry e) {
        if (sessions.remove(id, e)) {
            live.decrementAndGet();
            expired.incrementAndGet();
        }
    }

    void sweep() {
        long now = System.nanoTime();
        for (Iterator<Map.Entry<String, Entry>> it = sessions.entrySet().iterator(); it.hasNext(); ) {
            Map.Entry<String, Entry> me = it.next();
            if (now - me.getValue().lastAccess > timeoutNanos) {
                drop(me.getKey(), me.getValue());
            }
        }
    }

    @Override
    public void close() {
        reaper.shutdownNow();
    }

    @Override
    public int live() {
        return live.get();
    }

    @Override
    public long created() {
        return created.get();
    }

    @Override
    public long expired() {
        return expired.get();
    }

    /** The JSESSIONID value among the request's Cookie headers, or null. */
    static String cookieValue(Iterable<String> cookieHeaders) {
        if (cookieHeaders == null) {
            return null;
        }
        for (String h : cookieHeaders) {
            for (String part : h.split(";")) {
                int eq = part.indexOf('=');
                if (eq > 0 && COOKIE.equals(part.substring(0, eq).strip())) {
                    String v = part.substring(eq + 1).strip();
                    if (v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"")) {
                        v = v.substring(1, v.length() - 1);
                    }
                    return v;
                }
            }
        }
        return null;
    }

    /** Set-Cookie for a new session: HttpOnly, SameSite=Lax, Secure when the client used HTTPS. */
    static String setCookie(String id, boolean secure) {
        return COOKIE + "=" + id + "; Path=/; HttpOnly; SameSite=Lax" + (secure ? "; Secure" : "");
    }
}
