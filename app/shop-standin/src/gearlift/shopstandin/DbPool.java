package gearlift.shopstandin;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLNonTransientConnectionException;
import java.sql.SQLRecoverableException;
import java.sql.SQLTransientConnectionException;
import java.sql.Statement;
import java.util.Locale;
import java.util.Objects;
import java.util.Properties;
import java.util.concurrent.LinkedBlockingDeque;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A small JDBC connection pool whose settings come from an environment file.
 *
 * <p>The file is stat'ed on every borrow; when its mtime, size or inode changes it is re-read, and
 * if the resulting settings differ the pool moves to a new generation: idle connections are
 * closed at once and borrowed ones are closed when returned. Connections are validated (COM_PING)
 * before being handed out.
 *
 * <p>A login the server refuses (error 1045, e.g. a rotated password the host has not fetched
 * yet) makes the pool read the file again at once and, when a re-fetch file is configured, write
 * it (at most every {@link #REFETCH_MIN_INTERVAL_NANOS}): a systemd path unit re-runs the secret
 * fetcher, which rewrites the environment file, which the next borrow picks up. Open connections
 * are never closed for a new password: with alternating logins the old one stays valid until the
 * rotation after next.
 */
final class DbPool implements AutoCloseable {
    /** MariaDB/MySQL errors meaning "this server is read-only right now" (e.g. during a cutover). */
    static final int ER_OPTION_PREVENTS_STATEMENT = 1290; // --read-only / --super-read-only
    static final int ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION = 1792;
    static final int ER_READ_ONLY_MODE = 1836; // MariaDB "Running in read-only mode"
    /** The server refused the login (user or password). */
    static final int ER_ACCESS_DENIED = 1045;
    static final long REFETCH_MIN_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(15);

    private static final long MAX_LIFETIME_NANOS = TimeUnit.MINUTES.toNanos(10);
    private static final int CONNECT_TIMEOUT_MS = 3000;
    private static final int SOCKET_TIMEOUT_MS = 15000;
    private static final int VALIDATE_TIMEOUT_S = 2;

    private final Path envFile;
    private final int driverMajor;
    private final String driverVersion;
    private final Semaphore permits;
    private final LinkedBlockingDeque<Pooled> idle = new LinkedBlockingDeque<>();
    private final Object cfgLock = new Object();
    private volatile Snapshot snap = new Snapshot(null, "environment file not read yet", 0);
    private volatile boolean closed;
    private Stamp stamp; // guarded by cfgLock; null = never looked, MISSING = unreadable
    private String lastDbError; // guarded by this
    private long lastDbErrorAt; // guarded by this
    private volatile Path refetchFile; // null: no re-fetch requests
    private long lastRefetchAt; // guarded by cfgLock
    private boolean refetchedOnce; // guarded by cfgLock

    private static final Stamp MISSING = new Stamp(null, -1, null);

    private static final class Stamp {
        final FileTime mtime;
        final long size;
        final Object fileKey;

        Stamp(FileTime mtime, long size, Object fileKey) {
            this.mtime = mtime;
            this.size = size;
            this.fileKey = fileKey;
        }

        @Override
        public boolean equals(Object o) {
            if (!(o instanceof Stamp)) {
                return false;
            }
            Stamp s = (Stamp) o;
            return size == s.size && Objects.equals(mtime, s.mtime) && Objects.equals(fileKey, s.fileKey);
        }

        @Override
        public int hashCode() {
            return Objects.hash(mtime, size, fileKey);
        }
    }

    private static final class Snapshot {
        final DbConfig cfg; // null when unusable
        final String error; // why cfg is null
        final long gen;
        final AtomicBoolean warnedPlaintext = new AtomicBoolean();

        Snapshot(DbConfig cfg, String error, long gen) {
            this.cfg = cfg;
            this.error = error;
            this.gen = gen;
        }
    }

    private static final class Pooled {
        final Connection conn;
        final long gen;
        final long createdNanos = System.nanoTime();

        Pooled(Connection conn, long gen) {
            this.conn = conn;
            this.gen = gen;
        }

        boolean expired() {
            return System.nanoTime() - createdNanos > MAX_LIFETIME_NANOS;
        }
    }

    /** A borrowed connection; close() hands it back (or discards it when broken / stale). */
    final class Lease implements AutoCloseable {
        private final Pooled p;
        private boolean broken;
        private boolean done;

        private Lease(Pooled p) {
            this.p = p;
        }

        Connection conn() {
            return p.conn;
        }

        /** Do not reuse this connection (connection error, or the server turned read-only). */
        void discard() {
            broken = true;
        }

        @Override
        public void close() {
            if (done) {
                return;
            }
            done = true;
            try {
                if (broken || closed || p.gen != snap.gen || p.expired()) {
                    quietClose(p.conn);
                } else {
                    idle.offerFirst(p);
                    if (closed) {
                        drainIdle();
                    }
                }
            } finally {
                permits.release();
            }
        }
    }

    DbPool(Path envFile, int size) throws SQLException {
        this.envFile = envFile;
        this.permits = new Semaphore(size, true);
        Driver d = DriverManager.getDriver("jdbc:mariadb://localhost/");
        this.driverMajor = d.getMajorVersion();
        this.driverVersion = d.getMajorVersion() + "." + d.getMinorVersion();
    }

    /** Where to ask for a re-fetch of the secret after a refused login (null: never ask). */
    void refetchOnAuthFailure(Path file) {
        this.refetchFile = file;
    }

    String driverVersion() {
        return driverVersion;
    }

    /** Re-read the environment file if it changed since the last look. Cheap when unchanged. */
    void refresh() {
        synchronized (cfgLock) {
            Stamp now;
            try {
                BasicFileAttributes a = Files.readAttributes(envFile, BasicFileAttributes.class);
                now = new Stamp(a.lastModifiedTime(), a.size(), a.fileKey());
            } catch (IOException e) {
                unreadable(e);
                return;
            }
            if (now.equals(stamp)) {
                return;
            }
            EnvFile.Result parsed;
            try {
                parsed = EnvFile.read(envFile);
            } catch (IOException e) {
                unreadable(e);
                return;
            }
            stamp = now;
            if (parsed.ignoredLines > 0) {
                Log.warn("env file " + envFile + ": ignored " + parsed.ignoredLines
                        + " malformed line(s)");
            }
            DbConfig cfg = null;
            String err = null;
            try {
                cfg = DbConfig.from(parsed.values);
            } catch (DbConfig.Invalid e) {
                err = e.getMessage();
            }
            Snapshot old = snap;
            if (cfg != null && cfg.equals(old.cfg)) {
                Log.info("env file " + envFile + " changed; database settings unchanged");
                return;
            }
            if (cfg == null && old.cfg == null && err.equals(old.error)) {
                return;
            }
            Snapshot next = new Snapshot(cfg, err, old.gen + 1);
            snap = next;
            if (cfg == null) {
                Log.error("env file " + envFile + " unusable (generation " + next.gen + "): " + err);
            } else {
                Log.info("database settings from " + envFile + " (generation " + next.gen + "): "
                        + cfg + " [changed: " + cfg.changedFrom(old.cfg) + "]");
                if (cfg.tls != DbConfig.Tls.DISABLED && cfg.caPath == null) {
                    Log.warn("DB_TLS=" + cfg.tls.name().toLowerCase(Locale.ROOT)
                            + " without DB_TLS_CA: TLS is used but the server certificate is NOT"
                            + " verified (open to man-in-the-middle); set DB_TLS_CA to a CA bundle");
                }
            }
            drainIdle();
        }
    }

    private void unreadable(IOException e) {
        if (stamp == MISSING) {
            return;
        }
        stamp = MISSING;
        if (snap.cfg == null) {
            snap = new Snapshot(null, "env file " + envFile + " not readable", snap.gen + 1);
            Log.error("env file " + envFile + " not readable (" + e.getClass().getSimpleName()
                    + "); database unavailable until it appears");
        } else {
            Log.warn("env file " + envFile + " not readable (" + e.getClass().getSimpleName()
                    + "); keeping the last good database settings");
        }
    }

    Lease borrow(long waitMillis) throws SQLException {
        if (closed) {
            throw new SQLNonTransientConnectionException("connection pool closed", "08000");
        }
        refresh();
        Snapshot s = snap;
        if (s.cfg == null) {
            throw new SQLNonTransientConnectionException("database not configured: " + s.error, "08000");
        }
        try {
            if (!permits.tryAcquire(waitMillis, TimeUnit.MILLISECONDS)) {
                throw new SQLTransientConnectionException("connection pool exhausted", "08000");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SQLTransientConnectionException("interrupted waiting for a connection", "08000");
        }
        try {
            Pooled p;
            while ((p = idle.pollFirst()) != null) {
                if (p.gen == s.gen && !p.expired() && valid(p.conn)) {
                    return new Lease(p);
                }
                quietClose(p.conn);
            }
            return new Lease(new Pooled(connectOrReload(s), s.gen));
        } catch (SQLException | RuntimeException e) {
            permits.release();
            throw e;
        }
    }

    /** SELECT 1 through the pool. */
    boolean ping() {
        try (Lease l = borrow(1000)) {
            try (Statement st = l.conn().createStatement();
                    ResultSet rs = st.executeQuery("SELECT 1")) {
                return rs.next() && rs.getInt(1) == 1;
            } catch (SQLException e) {
                l.discard();
                throw e;
            }
        } catch (SQLException e) {
            logDbError("ping", e);
            return false;
        }
    }

    /**
     * Connect with the snapshot's login; when the server refuses it, ask for a re-fetch, read the
     * file again and, if that gave other settings, try once more with them.
     */
    private Connection connectOrReload(Snapshot s) throws SQLException {
        try {
            return connect(s);
        } catch (SQLException e) {
            if (!isAuthFailure(e)) {
                throw e;
            }
            Log.warn("database refused the login of generation " + s.gen + " (" + describe(e)
                    + "); re-reading " + envFile + requestRefetch());
            synchronized (cfgLock) {
                stamp = null; // read the file even if its stamp looks the same
            }
            refresh();
            Snapshot now = snap;
            if (now.gen == s.gen || now.cfg == null) {
                throw e;
            }
            return connect(now);
        }
    }

    /** Write the re-fetch file (throttled); the text to add to the log line. */
    private String requestRefetch() {
        Path file = refetchFile;
        if (file == null) {
            return "";
        }
        long now = System.nanoTime();
        synchronized (cfgLock) {
            if (refetchedOnce && now - lastRefetchAt < REFETCH_MIN_INTERVAL_NANOS) {
                return " (re-fetch requested recently)";
            }
            refetchedOnce = true;
            lastRefetchAt = now;
        }
        try {
            Files.writeString(file, java.time.Instant.now() + "\n");
            return "; asked for a re-fetch of the secret (" + file + ")";
        } catch (IOException e) {
            return "; could not ask for a re-fetch (" + file + ": " + e.getClass().getSimpleName() + ")";
        }
    }

    static boolean isAuthFailure(SQLException e) {
        return errorCode(e) == ER_ACCESS_DENIED;
    }

    private Connection connect(Snapshot s) throws SQLException {
        DbConfig c = s.cfg;
        if (c.tls == DbConfig.Tls.DISABLED) {
            return open(c, tlsOff(base(c)));
        }
        try {
            return open(c, tlsOn(base(c), c));
        } catch (SQLException e) {
            if (c.tls != DbConfig.Tls.PREFERRED || !serverHasNoTls(e)) {
                throw e;
            }
            if (s.warnedPlaintext.compareAndSet(false, true)) {
                Log.warn("DB_TLS=preferred: server " + c.host + ":" + c.port
                        + " does not offer TLS; connecting WITHOUT encryption");
            }
            return open(c, tlsOff(base(c)));
        }
    }

    private static Properties base(DbConfig c) {
        Properties p = new Properties();
        p.setProperty("user", c.user);
        p.setProperty("password", c.password);
        p.setProperty("connectTimeout", Integer.toString(CONNECT_TIMEOUT_MS));
        p.setProperty("socketTimeout", Integer.toString(SOCKET_TIMEOUT_MS));
        return p;
    }

    /**
     * TLS on. Connector/J 2.x (Debian bookworm ships 2.7.6): useSsl=true, and either
     * serverSslCert=&lt;CA bundle&gt; (chain + host name verified) or trustServerCertificate=true
     * (encrypted, not verified). Connector/J 3.x renamed this to sslMode=verify-full|trust.
     */
    private Properties tlsOn(Properties p, DbConfig c) {
        if (driverMajor >= 3) {
            p.setProperty("sslMode", c.caPath != null ? "verify-full" : "trust");
        } else {
            p.setProperty("useSsl", "true");
            if (c.caPath == null) {
                p.setProperty("trustServerCertificate", "true");
            }
        }
        if (c.caPath != null) {
            p.setProperty("serverSslCert", c.caPath);
        }
        return p;
    }

    private Properties tlsOff(Properties p) {
        if (driverMajor >= 3) {
            p.setProperty("sslMode", "disable");
        } else {
            p.setProperty("useSsl", "false");
        }
        return p;
    }

    private static Connection open(DbConfig c, Properties p) throws SQLException {
        Connection conn = DriverManager.getConnection(c.jdbcUrl(), p);
        try (Statement st = conn.createStatement()) {
            conn.setAutoCommit(true);
            // created_at is reported in UTC whatever the server's time zone is.
            st.execute("SET time_zone = '+00:00'");
            return conn;
        } catch (SQLException | RuntimeException e) {
            quietClose(conn);
            throw e;
        }
    }

    private static boolean serverHasNoTls(SQLException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String m = t.getMessage();
            if (m != null && m.toLowerCase(Locale.ROOT).contains("ssl not enabled in the server")) {
                return true;
            }
        }
        return false;
    }

    private static boolean valid(Connection c) {
        try {
            return c.isValid(VALIDATE_TIMEOUT_S);
        } catch (SQLException e) {
            return false;
        }
    }

    /** First non-zero vendor error code in the cause chain (0 if none). */
    static int errorCode(SQLException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof SQLException && ((SQLException) t).getErrorCode() != 0) {
                return ((SQLException) t).getErrorCode();
            }
        }
        return 0;
    }

    static boolean isReadOnly(SQLException e) {
        int code = errorCode(e);
        return code == ER_OPTION_PREVENTS_STATEMENT
                || code == ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
                || code == ER_READ_ONLY_MODE;
    }

    /** True when the connection should not be reused. */
    static boolean isConnectionProblem(SQLException e) {
        String state = e.getSQLState();
        return e instanceof SQLNonTransientConnectionException
                || e instanceof SQLTransientConnectionException
                || e instanceof SQLRecoverableException
                || (state != null && state.startsWith("08"))
                // after a failover the old primary turns read-only: reconnect (re-resolving DNS)
                || isReadOnly(e);
    }

    static String describe(SQLException e) {
        return "errno=" + errorCode(e) + " sqlstate=" + e.getSQLState() + " " + e.getMessage();
    }

    /** Log a DB error, suppressing identical repeats for a minute (health checks poll often). */
    void logDbError(String what, SQLException e) {
        String msg = what + ": " + describe(e);
        long now = System.nanoTime();
        synchronized (this) {
            if (msg.equals(lastDbError) && now - lastDbErrorAt < TimeUnit.MINUTES.toNanos(1)) {
                return;
            }
            lastDbError = msg;
            lastDbErrorAt = now;
        }
        Log.error("database error in " + msg);
    }

    private void drainIdle() {
        Pooled p;
        while ((p = idle.pollFirst()) != null) {
            quietClose(p.conn);
        }
    }

    private static void quietClose(Connection c) {
        try {
            c.close();
        } catch (SQLException | RuntimeException e) {
            // closing a dead connection; nothing to do
        }
    }

    @Override
    public void close() {
        closed = true;
        drainIdle();
    }
}
