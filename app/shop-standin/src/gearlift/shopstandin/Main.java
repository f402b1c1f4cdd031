package gearlift.shopstandin;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.SQLException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * gearlift stand-in shop: a tiny JSON web shop used by tests and the rehearsal twin in place of
 * the real shop artifact. See README.md next to build.sh.
 */
public final class Main {
    static final String DEFAULT_ENV_FILE = "/run/gearlift/db.env";
    private static final int POOL_SIZE = 4;
    private static final int HTTP_THREADS = 8;
    private static final int STOP_DELAY_S = 1;

    private Main() {}

    public static void main(String[] args) {
        // com.sun.net.httpserver (JDK 17) writes a response's headers and body as separate segments;
        // without TCP_NODELAY, Nagle holds the body until the client's delayed ACK (~40 ms) on every
        // reused keep-alive connection, such as Apache's pooled backend connections. Read once, when
        // the server class loads: set before HttpServer.create; an explicit -D still wins.
        if (System.getProperty("sun.net.httpserver.nodelay") == null) {
            System.setProperty("sun.net.httpserver.nodelay", "true");
        }
        String bind = env("APP_BIND", "127.0.0.1");
        int port;
        try {
            port = Integer.parseInt(env("APP_PORT", "8080"));
            if (port < 1 || port > 65535) {
                throw new NumberFormatException();
            }
        } catch (NumberFormatException e) {
            Log.error("APP_PORT must be an integer 1..65535");
            System.exit(2);
            return;
        }
        Settings settings;
        try {
            settings = Settings.from(System::getenv);
        } catch (Settings.Invalid e) {
            Log.error(e.getMessage());
            System.exit(2);
            return;
        }
        Path envFile = settings.envFile;

        DbPool pool;
        try {
            pool = new DbPool(envFile, POOL_SIZE);
            pool.refetchOnAuthFailure(settings.refetchFile);
        } catch (SQLException e) {
            Log.error("MariaDB Connector/J not found on the class path (" + e.getMessage()
                    + "); install libmariadb-java");
            System.exit(1);
            return;
        }
        pool.refresh();

        ThreadPoolExecutor executor = new ThreadPoolExecutor(
                HTTP_THREADS, HTTP_THREADS, 60, TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(256), named("http"),
                // When saturated the dispatcher runs the exchange itself: back-pressure, not drops.
                new ThreadPoolExecutor.CallerRunsPolicy());
        HttpServer server;
        try {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getByName(bind), port), 128);
        } catch (IOException e) {
            Log.error("cannot listen on " + bind + ":" + port + ": " + e.getMessage());
            System.exit(1);
            return;
        }
        Designs designs = new Designs(settings.uploadDir, settings.uploadMaxBytes);
        designs.init();
        SessionStore sessions;
        try {
            sessions = sessionStore(settings);
        } catch (RedisConfig.Invalid | IOException e) {
            Log.error(e.getMessage());
            System.exit(2);
            return;
        }
        ShopHandler shop = new ShopHandler(pool, hostname(), designs, sessions, Work.of(settings.workCpuMicros));
        server.createContext("/", new JdkHttpFront(shop, sessions));
        server.setExecutor(executor);

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            Log.info("shutdown requested; draining for up to " + STOP_DELAY_S + "s");
            server.stop(STOP_DELAY_S);
            executor.shutdown();
            try {
                if (!executor.awaitTermination(5, TimeUnit.SECONDS)) {
                    executor.shutdownNow();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            sessions.close();
            pool.close();
            Log.info("stopped");
        }, "shutdown"));

        server.start();
        Log.info("shop-standin listening on " + bind + ":" + server.getAddress().getPort()
                + " (Connector/J " + pool.driverVersion() + ", env file " + envFile + ", " + settings + ")");
    }

    /**
     * In memory unless the env file (written at boot by the secret unit) says SESSION_STORE=redis;
     * read once at start: the store does not move while the app runs.
     */
    static SessionStore sessionStore(Settings settings) throws RedisConfig.Invalid, IOException {
        RedisConfig redis = null;
        if (Files.isReadable(settings.envFile)) {
            redis = RedisConfig.from(EnvFile.read(settings.envFile).values);
        }
        if (redis == null) {
            Log.info("sessions in memory (lost when this process stops)");
            return new JarSessions(settings.sessionTimeoutSeconds, settings.maxSessions);
        }
        RedisClient client = new RedisClient(redis, POOL_SIZE * 2);
        try {
            client.call(RedisClient.bytes("PING"));
        } catch (IOException e) {
            // Not fatal: the store may come up after the app; requests needing a session get 503 until then.
            Log.warn("session store not reachable yet (" + e.getMessage() + ")");
        }
        Log.info("sessions in the session store: " + redis);
        return new RedisSessions(client, settings.sessionTimeoutSeconds);
    }

    private static String env(String key, String dflt) {
        String v = System.getenv(key);
        return v == null || v.isBlank() ? dflt : v.strip();
    }

    private static ThreadFactory named(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    /** The kernel's host name; avoids a DNS lookup (InetAddress.getLocalHost) when possible. */
    static String hostname() {
        try {
            String h = Files.readString(Path.of("/proc/sys/kernel/hostname"), StandardCharsets.UTF_8).strip();
            if (!h.isEmpty()) {
                return h;
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, fall through
        }
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "unknown";
        }
    }
}
