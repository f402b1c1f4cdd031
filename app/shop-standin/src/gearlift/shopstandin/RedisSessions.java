package gearlift.shopstandin;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputFilter;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.Serializable;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Sessions in Redis (ElastiCache in AWS), shared by every host: a host that stops loses no cart.
 * One key per session, {@code gl:sess:<id>}, holding the session's attributes (Java serialization,
 * read back through a filter admitting only the shop's own value types), with the idle timeout as
 * its TTL: refreshed on every access (GETEX), so Redis expires idle sessions. Every change is
 * written through at once.
 */
final class RedisSessions implements SessionStore {
    static final String PREFIX = "gl:sess:";
    // Only what the shop stores: HashMap checks its table (a Map.Entry[]) against the filter too, so
    // Map$Entry is listed; anything else is rejected (no gadget classes from a store another client wrote).
    private static final ObjectInputFilter FILTER = ObjectInputFilter.Config.createFilter(
            "maxdepth=10;maxrefs=10000;maxbytes=1048576;java.util.HashMap;java.util.LinkedHashMap;java.util.Map$Entry;"
                    + "java.lang.String;java.lang.Integer;java.lang.Number;gearlift.shopstandin.Cart;!*");

    private final RedisClient redis;
    private final int timeoutSeconds;
    private final SecureRandom random = new SecureRandom();
    private final AtomicLong created = new AtomicLong();
    private volatile long sizeAt;
    private volatile int size;

    private final class Entry implements SessionStore.Stored {
        private final String id;
        private final HashMap<String, Serializable> values;

        Entry(String id, HashMap<String, Serializable> values) {
            this.id = id;
            this.values = values;
        }

        @Override
        public String id() {
            return id;
        }

        @Override
        public synchronized Object get(String key) {
            return values.get(key);
        }

        @Override
        public synchronized void put(String key, Serializable value) {
            values.put(key, value);
            write(id, values, false);
        }
    }

    RedisSessions(RedisClient redis, int timeoutSeconds) {
        this.redis = redis;
        this.timeoutSeconds = timeoutSeconds;
    }

    private static byte[] key(String id) {
        return RedisClient.bytes(PREFIX + id);
    }

    @Override
    public Stored find(String id) {
        if (id == null || !JarSessions.ID.matcher(id).matches()) {
            return null;
        }
        Object r;
        try {
            r = redis.call(RedisClient.bytes("GETEX"), key(id), RedisClient.bytes("EX"),
                    RedisClient.bytes(Integer.toString(timeoutSeconds)));
        } catch (IOException e) {
            throw new SessionStore.Unavailable("session store unreachable: " + e.getMessage(), e);
        }
        if (!(r instanceof byte[])) {
            return null;
        }
        HashMap<String, Serializable> values = decode((byte[]) r);
        return values == null ? null : new Entry(id, values);
    }

    @Override
    public Stored create() {
        byte[] b = new byte[32];
        random.nextBytes(b);
        String id = Base64.getUrlEncoder().withoutPadding().encodeToString(b);
        HashMap<String, Serializable> values = new HashMap<>();
        if (!write(id, values, true)) {
            return null; // an id collision (practically never): the caller answers 503
        }
        created.incrementAndGet();
        return new Entry(id, values);
    }

    /** SET with the idle timeout as TTL; {@code onlyNew}: NX. True when written. */
    private boolean write(String id, HashMap<String, Serializable> values, boolean onlyNew) {
        byte[] data = encode(values);
        try {
            Object r = onlyNew
                    ? redis.call(RedisClient.bytes("SET"), key(id), data, RedisClient.bytes("EX"),
                            RedisClient.bytes(Integer.toString(timeoutSeconds)), RedisClient.bytes("NX"))
                    : redis.call(RedisClient.bytes("SET"), key(id), data, RedisClient.bytes("EX"),
                            RedisClient.bytes(Integer.toString(timeoutSeconds)));
            return "OK".equals(r);
        } catch (IOException e) {
            throw new SessionStore.Unavailable("session store unreachable: " + e.getMessage(), e);
        }
    }

    static byte[] encode(Map<String, Serializable> values) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(b)) {
            out.writeObject(new HashMap<>(values));
        } catch (IOException e) {
            throw new IllegalStateException("a session value is not serializable", e);
        }
        return b.toByteArray();
    }

    /** The attributes, or null when the stored bytes are not a session this shop wrote. */
    @SuppressWarnings("unchecked")
    static HashMap<String, Serializable> decode(byte[] data) {
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(data))) {
            in.setObjectInputFilter(FILTER);
            Object o = in.readObject();
            return o instanceof HashMap ? (HashMap<String, Serializable>) o : null;
        } catch (IOException | ClassNotFoundException | ClassCastException e) {
            Log.warn("session store: a stored session could not be read (" + e.getClass().getSimpleName() + ")");
            return null;
        }
    }

    /** Sessions in the store (every host's), cached for 5 s; 0 when the store cannot be reached. */
    @Override
    public int live() {
        long now = System.nanoTime();
        if (now - sizeAt > 5_000_000_000L) {
            sizeAt = now;
            try {
                Object r = redis.call(RedisClient.bytes("DBSIZE"));
                size = r instanceof Long ? (int) Math.min(Integer.MAX_VALUE, (Long) r) : 0;
            } catch (IOException e) {
                size = 0;
            }
        }
        return size;
    }

    @Override
    public long created() {
        return created.get();
    }

    /** Redis expires idle sessions itself: not counted here. */
    @Override
    public long expired() {
        return 0;
    }

    @Override
    public void close() {
        redis.close();
    }
}
