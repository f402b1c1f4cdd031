package gearlift.shopstandin;

import java.nio.file.Path;
import java.util.Map;

/**
 * Where sessions live, from the env file the secret unit writes at boot (next to the DB settings):
 * {@code SESSION_STORE} {@code memory} (default) or {@code redis}; with redis
 * {@code SESSION_REDIS_HOST}, {@code SESSION_REDIS_PORT} (6379), {@code SESSION_REDIS_TLS}
 * ({@code required} default, or {@code disabled}), {@code SESSION_REDIS_TLS_CA} (PEM bundle; empty:
 * the JDK's trust store) and {@code SESSION_REDIS_TOKEN} (the AUTH token; never logged).
 */
final class RedisConfig {
    final String host;
    final int port;
    final boolean tls;
    final Path caPath; // null: the JDK's default trust store
    final String token; // null: no AUTH

    /** A setting with a bad value; the message names the key, never a value. */
    static final class Invalid extends Exception {
        private static final long serialVersionUID = 1L;

        Invalid(String msg) {
            super(msg);
        }
    }

    RedisConfig(String host, int port, boolean tls, Path caPath, String token) {
        this.host = host;
        this.port = port;
        this.tls = tls;
        this.caPath = caPath;
        this.token = token;
    }

    /** The redis settings, or null when SESSION_STORE is memory (or absent). */
    static RedisConfig from(Map<String, String> env) throws Invalid {
        String mode = value(env, "SESSION_STORE", "memory");
        if ("memory".equals(mode)) {
            return null;
        }
        if (!"redis".equals(mode)) {
            throw new Invalid("SESSION_STORE must be memory or redis");
        }
        String host = value(env, "SESSION_REDIS_HOST", null);
        if (host == null || !host.matches("[A-Za-z0-9][A-Za-z0-9.-]{0,252}")) {
            throw new Invalid("SESSION_REDIS_HOST must be a host name or address");
        }
        int port;
        try {
            port = Integer.parseInt(value(env, "SESSION_REDIS_PORT", "6379"));
        } catch (NumberFormatException e) {
            port = 0;
        }
        if (port < 1 || port > 65535) {
            throw new Invalid("SESSION_REDIS_PORT must be an integer 1..65535");
        }
        String tls = value(env, "SESSION_REDIS_TLS", "required");
        if (!"required".equals(tls) && !"disabled".equals(tls)) {
            throw new Invalid("SESSION_REDIS_TLS must be required or disabled");
        }
        String ca = value(env, "SESSION_REDIS_TLS_CA", null);
        if (ca != null && !ca.startsWith("/")) {
            throw new Invalid("SESSION_REDIS_TLS_CA must be an absolute path");
        }
        String token = value(env, "SESSION_REDIS_TOKEN", null);
        return new RedisConfig(host, port, "required".equals(tls), ca == null ? null : Path.of(ca), token);
    }

    private static String value(Map<String, String> env, String key, String dflt) {
        String v = env.get(key);
        return v == null || v.isBlank() ? dflt : v.strip();
    }

    @Override
    public String toString() {
        return "redis " + host + ":" + port + (tls ? " (TLS" + (caPath == null ? ", JDK trust store" : ", CA " + caPath) + ")"
                : " (no TLS)") + (token == null ? ", no AUTH" : ", AUTH");
    }
}
