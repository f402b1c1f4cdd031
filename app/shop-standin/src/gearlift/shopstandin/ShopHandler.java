package gearlift.shopstandin;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * All routes of the stand-in shop, independent of the HTTP front end: the jar's
 * com.sun.net.httpserver server ({@link JdkHttpFront}) and the WAR's servlet (ShopServlet) both
 * turn their request into an {@link HttpReq} and write the {@link Resp} this returns.
 */
final class ShopHandler {
    private static final int MAX_BODY = 16 * 1024;
    private static final long BORROW_WAIT_MS = 2000;
    private static final long HEALTH_CACHE_NANOS = 2_000_000_000L;
    private static final int MAX_QTY = 1000;

    static final Pattern ORDER_REF = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._:-]{0,63}");
    /** A checkout's reference: its order lines are {@code <ref>.<n>}, so it has no dot itself. */
    static final Pattern CHECKOUT_REF = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_:-]{0,59}");
    static final Pattern SKU = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,31}");
    private static final Set<String> ORDER_FIELDS = Set.of("order_ref", "sku", "qty");
    private static final Set<String> CART_ITEM_FIELDS = Set.of("sku", "qty");
    private static final Set<String> CHECKOUT_FIELDS = Set.of("order_ref");

    private final DbPool pool;
    private final String hostname;
    private final Designs designs;
    private final SessionStats sessions;
    private final Work work;
    private final SecureRandom random = new SecureRandom();
    private final AtomicLong checkouts = new AtomicLong();
    // /health never waits for the database: the last ping's verdict, refreshed off the request thread.
    // (A ping waiting on a slow name lookup or connect held every /health behind one lock: the load
    // balancer's checks and clients timed out on a host that served HTTP fine.)
    private volatile long healthCheckedAt;
    private volatile boolean healthDbOk;
    private final AtomicBoolean healthPinging = new AtomicBoolean();
    private final ExecutorService healthPinger = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "health-ping");
        t.setDaemon(true);
        return t;
    });

    ShopHandler(DbPool pool, String hostname, Designs designs, SessionStats sessions, Work work) {
        this.pool = pool;
        this.work = work;
        this.hostname = hostname;
        this.designs = designs;
        this.sessions = sessions;
    }

    private static Resp error(int status, String msg) {
        return Resp.error(status, msg);
    }

    /** Answers one request; never throws (an unexpected failure is a logged 500). */
    Resp handle(HttpReq req) {
        String method = req.method();
        String path = req.path();
        try {
            return route(method, path, req);
        } catch (IOException e) {
            Log.warn("I/O error for " + method + " " + path + ": " + e.getClass().getSimpleName());
            return error(500, "internal error").header("Connection", "close");
        } catch (SessionStore.Unavailable e) {
            // The cart is kept where it is (the store); the client retries.
            Log.warn(e.getMessage() + " (" + method + " " + path + ")");
            return error(503, "session store unavailable, retry later").header("Retry-After", "1");
        } catch (RuntimeException e) {
            Log.error("unhandled " + e.getClass().getName() + " for " + method + " " + path);
            return error(500, "internal error");
        }
    }

    private Resp route(String method, String path, HttpReq req) throws IOException {
        boolean get = "GET".equals(method);
        boolean post = "POST".equals(method);
        boolean delete = "DELETE".equals(method);
        if (get && "/health".equals(path)) {
            return health();
        }
        if (get && "/ready".equals(path)) {
            return ready();
        }
        if (get && "/metrics".equals(path)) {
            return metrics();
        }
        // Every customer's request costs the monolith its CPU (the probes above cost none).
        work.spend();
        if (get && "/catalog".equals(path)) {
            return catalog();
        }
        if (post && "/orders".equals(path)) {
            return createOrder(req);
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
        if ("/cart".equals(path)) {
            if (get) {
                return getCart(req);
            }
            if (delete) {
                return clearCart(req);
            }
        }
        if (post && "/cart/items".equals(path)) {
            return addToCart(req);
        }
        if (delete && path.startsWith("/cart/items/")) {
            String sku = path.substring("/cart/items/".length());
            if (SKU.matcher(sku).matches()) {
                return removeFromCart(req, sku);
            }
        }
        if (post && "/cart/checkout".equals(path)) {
            return checkout(req);
        }
        if ("/designs".equals(path)) {
            if (post) {
                return designs.upload(req);
            }
            if (get) {
                return designs.list();
            }
        }
        if (get && path.startsWith("/designs/")) {
            return designs.get(path.substring("/designs/".length()), req.header("If-None-Match"));
        }
        return error(404, "not found");
    }

    // ---------------------------------------------------------------- endpoints

    /**
     * Shallow: always 200 while the process serves HTTP, at once; "db" is informational: the verdict
     * of the last ping ("down" until the first one ends), a new ping started when it is older than
     * HEALTH_CACHE_NANOS and none is running.
     */
    private Resp health() {
        long checked = healthCheckedAt;
        if ((checked == 0 || System.nanoTime() - checked > HEALTH_CACHE_NANOS)
                && healthPinging.compareAndSet(false, true)) {
            try {
                healthPinger.execute(() -> {
                    try {
                        healthDbOk = pool.ping();
                        healthCheckedAt = System.nanoTime();
                    } finally {
                        healthPinging.set(false);
                    }
                });
            } catch (RejectedExecutionException e) {
                healthPinging.set(false);
            }
        }
        return new Resp(200, Json.obj("status", "ok", "host", hostname, "db", healthDbOk ? "ok" : "down",
                "sessions", sessions.live()));
    }

    private Resp ready() {
        boolean ok = pool.ping();
        healthDbOk = ok;
        healthCheckedAt = System.nanoTime();
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

    private Resp createOrder(HttpReq req) throws IOException {
        String text;
        try {
            text = readBody(req);
        } catch (BadRequest e) {
            return error(400, e.getMessage());
        }
        String ref;
        String sku;
        int qty;
        try {
            Map<?, ?> m = jsonObject(text, ORDER_FIELDS);
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

    // ---------------------------------------------------------------- metrics

    /** Prometheus text format, for tests and the rehearsal's load loop. */
    private Resp metrics() {
        StringBuilder b = new StringBuilder();
        metric(b, "shop_sessions_live", "gauge", "HTTP sessions alive in this process", sessions.live());
        metric(b, "shop_sessions_created_total", "counter", "HTTP sessions created", sessions.created());
        metric(b, "shop_sessions_expired_total", "counter", "HTTP sessions expired or invalidated",
                sessions.expired());
        metric(b, "shop_checkouts_total", "counter", "carts turned into orders", checkouts.get());
        metric(b, "shop_designs_uploaded_total", "counter", "designs stored", designs.uploaded.get());
        metric(b, "shop_designs_rejected_total", "counter", "design uploads refused", designs.rejected.get());
        metric(b, "shop_designs_stored", "gauge", "designs in the upload directory (-1: unreadable)",
                designs.count());
        return Resp.text(200, "text/plain; version=0.0.4; charset=utf-8", b.toString());
    }

    private static void metric(StringBuilder b, String name, String type, String help, long value) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
        b.append(name).append(' ').append(value).append('\n');
    }

    // ---------------------------------------------------------------- cart (HTTP session)

    private static Cart cartOf(ShopSession s) {
        Object o = s == null ? null : s.get(Cart.ATTRIBUTE);
        return o instanceof Cart ? (Cart) o : null;
    }

    private static Resp cartResp(Cart cart) {
        return new Resp(200, cart == null ? Cart.emptyJson() : cart.toJson());
    }

    private Resp getCart(HttpReq req) {
        return cartResp(cartOf(req.session(false)));
    }

    private Resp clearCart(HttpReq req) {
        ShopSession s = req.session(false);
        Cart cart = cartOf(s);
        if (cart != null) {
            if (cart.checkingOut()) {
                return error(409, "checkout in progress");
            }
            cart.clear();
            s.put(Cart.ATTRIBUTE, cart);
        }
        return cartResp(cart);
    }

    private Resp addToCart(HttpReq req) throws IOException {
        String sku;
        int qty;
        try {
            Map<?, ?> m = jsonObject(readBody(req), CART_ITEM_FIELDS);
            sku = stringField(m, "sku", SKU);
            qty = qtyField(m);
        } catch (BadRequest e) {
            return error(400, e.getMessage());
        }
        try (DbPool.Lease l = pool.borrow(BORROW_WAIT_MS)) {
            try (PreparedStatement ps = l.conn().prepareStatement("SELECT 1 FROM products WHERE sku = ?")) {
                ps.setString(1, sku);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        return error(422, "unknown sku");
                    }
                }
            } catch (SQLException e) {
                markIfBroken(l, e);
                throw e;
            }
        } catch (SQLException e) {
            return dbFailure("cart item", e);
        }
        ShopSession s = req.session(true);
        if (s == null) {
            return error(503, "too many sessions, retry later").header("Retry-After", "5");
        }
        Cart cart = cartOf(s);
        if (cart == null) {
            cart = new Cart();
        }
        String refused = cart.add(sku, qty);
        if (refused != null) {
            return error(400, refused);
        }
        s.put(Cart.ATTRIBUTE, cart);
        return cartResp(cart);
    }

    private Resp removeFromCart(HttpReq req, String sku) {
        ShopSession s = req.session(false);
        Cart cart = cartOf(s);
        if (cart == null || !cart.remove(sku)) {
            return error(404, "not in the cart");
        }
        s.put(Cart.ATTRIBUTE, cart);
        return cartResp(cart);
    }

    /**
     * Turns the session's cart into orders in one transaction: one row in {@code orders} per cart
     * line, {@code order_ref} {@code <ref>.<n>}. The client may send {@code {"order_ref": ref}} so
     * a retried checkout is refused as a duplicate instead of ordering twice.
     */
    private Resp checkout(HttpReq req) throws IOException {
        String ref = null;
        if (req.contentLength() != 0) {
            try {
                String text = readBodyOrEmpty(req);
                if (!text.isBlank()) {
                    ref = stringField(jsonObject(text, CHECKOUT_FIELDS), "order_ref", CHECKOUT_REF);
                }
            } catch (BadRequest e) {
                return error(400, e.getMessage());
            }
        }
        if (ref == null) {
            byte[] b = new byte[10];
            random.nextBytes(b);
            ref = "co-" + HexFormat.of().formatHex(b);
        }
        ShopSession s = req.session(false);
        Cart cart = cartOf(s);
        if (cart == null || cart.snapshot().isEmpty()) {
            return error(409, "the cart is empty");
        }
        if (!cart.beginCheckout()) {
            return error(409, "checkout in progress");
        }
        Map<String, Integer> lines = cart.snapshot();
        Map<String, Integer> ordered = null;
        try {
            Resp r = insertOrders(ref, lines);
            if (r.status == 201) {
                ordered = lines;
                checkouts.incrementAndGet();
            }
            return r;
        } finally {
            cart.endCheckout(ordered);
            s.put(Cart.ATTRIBUTE, cart);
        }
    }

    private Resp insertOrders(String ref, Map<String, Integer> lines) {
        String sql = "INSERT INTO orders (order_ref, sku, qty) SELECT ?, sku, ? FROM products WHERE sku = ?";
        try (DbPool.Lease l = pool.borrow(BORROW_WAIT_MS)) {
            Connection c = l.conn();
            try {
                c.setAutoCommit(false);
                List<Object> orders = new ArrayList<>();
                int n = 0;
                for (Map.Entry<String, Integer> line : lines.entrySet()) {
                    String lineRef = ref + "." + (++n);
                    try (PreparedStatement ps = c.prepareStatement(sql, Statement.RETURN_GENERATED_KEYS)) {
                        ps.setString(1, lineRef);
                        ps.setInt(2, line.getValue());
                        ps.setString(3, line.getKey());
                        if (ps.executeUpdate() == 0) {
                            c.rollback();
                            return new Resp(422, Json.obj("error", "unknown sku", "sku", line.getKey()));
                        }
                        try (ResultSet keys = ps.getGeneratedKeys()) {
                            if (!keys.next()) {
                                throw new SQLException("no generated key returned");
                            }
                            orders.add(Json.obj("id", keys.getLong(1), "order_ref", lineRef,
                                    "sku", line.getKey(), "qty", line.getValue()));
                        }
                    }
                }
                c.commit();
                return new Resp(201, Json.obj("order_ref", ref, "orders", orders));
            } catch (SQLException e) {
                try {
                    c.rollback();
                } catch (SQLException rollbackFailed) {
                    l.discard();
                }
                markIfBroken(l, e);
                throw e;
            } finally {
                try {
                    c.setAutoCommit(true);
                } catch (SQLException e) {
                    l.discard();
                }
            }
        } catch (SQLException e) {
            if (DbPool.errorCode(e) == 1062) {
                return new Resp(409, Json.obj("error", "duplicate order_ref", "order_ref", ref));
            }
            return dbFailure("checkout", e);
        }
    }

    // ---------------------------------------------------------------- helpers

    private static final class BadRequest extends Exception {
        private static final long serialVersionUID = 1L;

        BadRequest(String msg) {
            super(msg);
        }
    }

    /** Parses a JSON object that has only the given keys. */
    private static Map<?, ?> jsonObject(String text, Set<String> allowed) throws BadRequest {
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
            if (!allowed.contains(k)) {
                throw new BadRequest("unknown field: " + Log.sanitize(String.valueOf(k)));
            }
        }
        return m;
    }

    private static String readBodyOrEmpty(HttpReq req) throws IOException, BadRequest {
        try {
            return readBody(req);
        } catch (BadRequest e) {
            if ("empty body".equals(e.getMessage())) {
                return "";
            }
            throw e;
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

    private static String readBody(HttpReq req) throws IOException, BadRequest {
        byte[] buf = new byte[MAX_BODY + 1];
        int n = 0;
        try (InputStream in = req.body()) {
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
}
