package gearlift.shopstandin;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/** All routes of the stand-in shop. Every response is JSON. */
final class ShopHandler implements HttpHandler {
    private static final int MAX_BODY = 16 * 1024;
    private static final long BORROW_WAIT_MS = 2000;
    private static final long HEALTH_CACHE_NANOS = 2_000_000_000L;
    private static final int MAX_QTY = 1000;

    static final Pattern ORDER_REF = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._:-]{0,63}");
    static final Pattern SKU = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,31}");
    private static final Set<String> ORDER_FIELDS = Set.of("order_ref", "sku", "qty");

    private final DbPool pool;
    private final String hostname;
    private final Object healthLock = new Object();
    private long healthCheckedAt; // guarded by healthLock
    private boolean healthDbOk; // guarded by healthLock

    ShopHandler(DbPool pool, String hostname) {
        this.pool = pool;
        this.hostname = hostname;
    }

    /** A response to send. */
    static final class Resp {
        final int status;
        final Object body;
        final Map<String, String> headers = new LinkedHashMap<>();

        Resp(int status, Object body) {
            this.status = status;
            this.body = body;
        }

        Resp header(String k, String v) {
            headers.put(k, v);
            return this;
        }
    }

    private static Resp error(int status, String msg) {
        return new Resp(status, Json.obj("error", msg));
    }

    @Override
    public void handle(HttpExchange ex) {
        long t0 = System.nanoTime();
        String method = ex.getRequestMethod();
        String path = ex.getRequestURI().getRawPath();
        int status = 500;
        try {
            Resp r;
            try {
                r = route(method, path, ex);
            } catch (RuntimeException e) {
                Log.error("unhandled " + e.getClass().getName() + " for " + method + " " + path);
                r = error(500, "internal error");
            }
            status = r.status;
            send(ex, r);
        } catch (IOException e) {
            // client went away; nothing more to do
        } finally {
            ex.close();
            long ms = (System.nanoTime() - t0) / 1_000_000;
            Log.info("request method=" + method + " path=" + path + " status=" + status + " ms=" + ms);
        }
    }

    private Resp route(String method, String path, HttpExchange ex) throws IOException {
        boolean get = "GET".equals(method);
        if (get && "/health".equals(path)) {
            return health();
        }
        if (get && "/ready".equals(path)) {
            return ready();
        }
        if (get && "/catalog".equals(path)) {
            return catalog();
        }
        if ("POST".equals(method) && "/orders".equals(path)) {
            return createOrder(ex);
        }
        if (get && "/orders/count".equals(path)) {
            return orderCount();
        }
        if (get && path.startsWith("/orders/")) {
            String ref = path.substring("/orders/".length());
            if (ORDER_REF.matcher(ref).matches()) {
                return getOrder(ref);
            }
        }
        return error(404, "not found");
    }

    // ---------------------------------------------------------------- endpoints

    /** Shallow: always 200 while the process serves HTTP; "db" is informational. */
    private Resp health() {
        boolean ok;
        synchronized (healthLock) {
            long now = System.nanoTime();
            if (healthCheckedAt == 0 || now - healthCheckedAt > HEALTH_CACHE_NANOS) {
                healthDbOk = pool.ping();
                healthCheckedAt = System.nanoTime();
            }
            ok = healthDbOk;
        }
        return new Resp(200, Json.obj("status", "ok", "host", hostname, "db", ok ? "ok" : "down"));
    }

    private Resp ready() {
        boolean ok = pool.ping();
        synchronized (healthLock) {
            healthDbOk = ok;
            healthCheckedAt = System.nanoTime();
        }
        return ok
                ? new Resp(200, Json.obj("status", "ready"))
                : new Resp(503, Json.obj("status", "not ready", "error", "database unavailable"));
    }

    private Resp catalog() {
        try (DbPool.Lease l = pool.borrow(BORROW_WAIT_MS)) {
            try (Statement st = l.conn().createStatement();
                    ResultSet rs = st.executeQuery(
                            "SELECT sku, name, price_cents FROM products ORDER BY sku")) {
                List<Object> out = new ArrayList<>();
                while (rs.next()) {
                    out.add(Json.obj(
                            "sku", rs.getString(1),
                            "name", rs.getString(2),
                            "price_cents", rs.getInt(3)));
                }
                return new Resp(200, out);
            } catch (SQLException e) {
                markIfBroken(l, e);
                throw e;
            }
        } catch (SQLException e) {
            return dbFailure("catalog", e);
        }
    }

    private Resp orderCount() {
        try (DbPool.Lease l = pool.borrow(BORROW_WAIT_MS)) {
            try (Statement st = l.conn().createStatement();
                    ResultSet rs = st.executeQuery("SELECT COUNT(*) FROM orders")) {
                rs.next();
                return new Resp(200, Json.obj("count", rs.getLong(1)));
            } catch (SQLException e) {
                markIfBroken(l, e);
                throw e;
            }
        } catch (SQLException e) {
            return dbFailure("order count", e);
        }
    }

    private Resp getOrder(String ref) {
        String sql = "SELECT id, order_ref, sku, qty,"
                + " DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ')"
                + " FROM orders WHERE order_ref = ?";
        try (DbPool.Lease l = pool.borrow(BORROW_WAIT_MS)) {
            try (PreparedStatement ps = l.conn().prepareStatement(sql)) {
                ps.setString(1, ref);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        return error(404, "order not found");
                    }
                    return new Resp(200, Json.obj(
                            "id", rs.getLong(1),
                            "order_ref", rs.getString(2),
                            "sku", rs.getString(3),
                            "qty", rs.getInt(4),
                            "created_at", rs.getString(5)));
                }
            } catch (SQLException e) {
                markIfBroken(l, e);
                throw e;
            }
        } catch (SQLException e) {
            return dbFailure("get order", e);
        }
    }

    private Resp createOrder(HttpExchange ex) throws IOException {
        String text;
        try {
            text = readBody(ex);
        } catch (BadRequest e) {
            return error(400, e.getMessage());
        }
        String ref;
        String sku;
        int qty;
        try {
            Object parsed;
            try {
                parsed = Json.parse(text);
            } catch (Json.ParseError e) {
                throw new BadRequest("malformed JSON: " + e.getMessage());
            }
            if (!(parsed instanceof Map)) {
                throw new BadRequest("body must be a JSON object");
            }
            Map<?, ?> m = (Map<?, ?>) parsed;
            for (Object k : m.keySet()) {
                if (!ORDER_FIELDS.contains(k)) {
                    throw new BadRequest("unknown field: " + Log.sanitize(String.valueOf(k)));
                }
            }
            ref = stringField(m, "order_ref", ORDER_REF);
            if ("count".equals(ref)) {
                throw new BadRequest("order_ref 'count' is reserved");
            }
            sku = stringField(m, "sku", SKU);
            qty = qtyField(m);
        } catch (BadRequest e) {
            return error(400, e.getMessage());
        }

        // One statement: inserts only when the SKU exists, so no FK and no check-then-act race.
        String sql = "INSERT INTO orders (order_ref, sku, qty)"
                + " SELECT ?, sku, ? FROM products WHERE sku = ?";
        try (DbPool.Lease l = pool.borrow(BORROW_WAIT_MS)) {
            try (PreparedStatement ps = l.conn().prepareStatement(sql, Statement.RETURN_GENERATED_KEYS)) {
                ps.setString(1, ref);
                ps.setInt(2, qty);
                ps.setString(3, sku);
                if (ps.executeUpdate() == 0) {
                    return error(422, "unknown sku");
                }
                try (ResultSet keys = ps.getGeneratedKeys()) {
                    if (!keys.next()) {
                        throw new SQLException("no generated key returned");
                    }
                    return new Resp(201, Json.obj("id", keys.getLong(1), "order_ref", ref))
                            .header("Location", "/orders/" + ref);
                }
            } catch (SQLException e) {
                markIfBroken(l, e);
                throw e;
            }
        } catch (SQLException e) {
            if (DbPool.errorCode(e) == 1062) { // ER_DUP_ENTRY on order_ref
                return new Resp(409, Json.obj("error", "duplicate order_ref", "order_ref", ref));
            }
            return dbFailure("create order", e);
        }
    }

    // ---------------------------------------------------------------- helpers

    private static final class BadRequest extends Exception {
        private static final long serialVersionUID = 1L;

        BadRequest(String msg) {
            super(msg);
        }
    }

    private static String stringField(Map<?, ?> m, String key, Pattern p) throws BadRequest {
        Object v = m.get(key);
        if (!(v instanceof String)) {
            throw new BadRequest(key + " must be a string");
        }
        if (!p.matcher((String) v).matches()) {
            throw new BadRequest(key + " must match " + p.pattern());
        }
        return (String) v;
    }

    private static int qtyField(Map<?, ?> m) throws BadRequest {
        Object v = m.get("qty");
        if (!(v instanceof Json.Num) || !((Json.Num) v).isInteger()) {
            throw new BadRequest("qty must be an integer");
        }
        String t = ((Json.Num) v).text;
        if (t.startsWith("-") || t.length() > 4 || Integer.parseInt(t) < 1
                || Integer.parseInt(t) > MAX_QTY) {
            throw new BadRequest("qty must be between 1 and " + MAX_QTY);
        }
        return Integer.parseInt(t);
    }

    private static String readBody(HttpExchange ex) throws IOException, BadRequest {
        byte[] buf = new byte[MAX_BODY + 1];
        int n = 0;
        try (InputStream in = ex.getRequestBody()) {
            int r;
            while (n < buf.length && (r = in.read(buf, n, buf.length - n)) > 0) {
                n += r;
            }
        }
        if (n > MAX_BODY) {
            throw new BadRequest("body larger than " + MAX_BODY + " bytes");
        }
        if (n == 0) {
            throw new BadRequest("empty body");
        }
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(buf, 0, n))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new BadRequest("body is not valid UTF-8");
        }
    }

    private static void markIfBroken(DbPool.Lease l, SQLException e) {
        if (DbPool.isConnectionProblem(e)) {
            l.discard();
        }
    }

    private Resp dbFailure(String what, SQLException e) {
        pool.logDbError(what, e);
        if (DbPool.isReadOnly(e)) {
            return error(503, "database is read-only, retry shortly").header("Retry-After", "1");
        }
        return error(503, "database unavailable");
    }

    private static void send(HttpExchange ex, Resp r) throws IOException {
        byte[] body = Json.write(r.body).getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json; charset=utf-8");
        ex.getResponseHeaders().set("Cache-Control", "no-store");
        for (Map.Entry<String, String> h : r.headers.entrySet()) {
            ex.getResponseHeaders().set(h.getKey(), h.getValue());
        }
        ex.sendResponseHeaders(r.status, body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
    }
}
