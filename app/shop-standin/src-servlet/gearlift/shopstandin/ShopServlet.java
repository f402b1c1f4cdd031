package gearlift.shopstandin;

import jakarta.servlet.ServletException;
import jakarta.servlet.UnavailableException;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.HttpSession;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.sql.Driver;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Enumeration;
import java.util.Map;
import java.util.function.IntSupplier;

/**
 * The WAR's front end: the servlet container's requests in, {@link ShopHandler} responses out.
 * Sessions are the container's HttpSession (JSESSIONID, HttpOnly; SameSite and the Secure flag
 * behind a TLS-terminating proxy come from META-INF/context.xml), so the container's session
 * manager decides where carts live. Settings come from the same environment variables as the jar.
 */
public final class ShopServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;
    private static final int POOL_SIZE = 4;

    private transient DbPool pool;
    private transient ShopHandler shop;
    private transient Settings settings;

    @Override
    public void init() throws ServletException {
        try {
            settings = Settings.from(System::getenv);
        } catch (Settings.Invalid e) {
            Log.error(e.getMessage());
            throw new UnavailableException(e.getMessage());
        }
        try {
            // The driver is in WEB-INF/lib: register it from this web application's class loader.
            Class.forName("org.mariadb.jdbc.Driver");
            pool = new DbPool(settings.envFile, POOL_SIZE);
            pool.refetchOnAuthFailure(settings.refetchFile);
        } catch (ClassNotFoundException | SQLException e) {
            Log.error("MariaDB Connector/J not found in the web application (" + e.getMessage() + ")");
            throw new UnavailableException("MariaDB Connector/J not found");
        }
        pool.refresh();
        Designs designs = new Designs(settings.uploadDir, settings.uploadMaxBytes);
        designs.init();
        // With the session store's manager (RedisSessionManager, in Tomcat's lib) the live count is
        // the store's (every host's sessions); otherwise this process's HttpSessions.
        Object storeLive = getServletContext().getAttribute("gearlift.sessionStore.live");
        SessionStats stats = storeLive instanceof IntSupplier ? SessionCounter.withLive((IntSupplier) storeLive)
                : SessionCounter.STATS;
        shop = new ShopHandler(pool, Main.hostname(), designs, stats, Work.of(settings.workCpuMicros));
        Log.info("shop-standin servlet ready (Connector/J " + pool.driverVersion() + ", env file "
                + settings.envFile + ", " + settings + ")");
    }

    @Override
    public void destroy() {
        if (pool != null) {
            pool.close();
        }
        // Drivers registered by this web application would pin its class loader after undeploy.
        ClassLoader mine = getClass().getClassLoader();
        Enumeration<Driver> drivers = DriverManager.getDrivers();
        while (drivers.hasMoreElements()) {
            Driver d = drivers.nextElement();
            if (d.getClass().getClassLoader() == mine) {
                try {
                    DriverManager.deregisterDriver(d);
                } catch (SQLException e) {
                    Log.warn("could not deregister " + d.getClass().getName());
                }
            }
        }
        Log.info("stopped");
    }

    /** HttpReq over a servlet request. */
    private final class Req implements HttpReq {
        private final HttpServletRequest r;

        Req(HttpServletRequest r) {
            this.r = r;
        }

        @Override
        public String method() {
            return r.getMethod();
        }

        @Override
        public String path() {
            String uri = r.getRequestURI();
            String ctx = r.getContextPath();
            String p = uri.startsWith(ctx) ? uri.substring(ctx.length()) : uri;
            int semi = p.indexOf(';'); // path parameters (e.g. ;jsessionid=) are not part of the route
            return semi < 0 ? p : p.substring(0, semi);
        }

        @Override
        public String header(String name) {
            return r.getHeader(name);
        }

        @Override
        public long contentLength() {
            long n = r.getContentLengthLong();
            if (n < 0 && r.getHeader("Transfer-Encoding") == null) {
                return 0;
            }
            return n;
        }

        @Override
        public InputStream body() throws IOException {
            return r.getInputStream();
        }

        @Override
        public ShopSession session(boolean create) {
            HttpSession s;
            try {
                s = r.getSession(create);
                if (s != null && s.isNew()) {
                    s.setMaxInactiveInterval(settings.sessionTimeoutSeconds);
                }
            } catch (IllegalStateException e) {
                return null; // the manager's session limit, or the response is committed
            } catch (UncheckedIOException e) {
                // An external session manager that cannot reach its store: 503, the cart stays there.
                throw new SessionStore.Unavailable(e.getMessage(), e);
            }
            if (s == null) {
                return null;
            }
            return new ShopSession() {
                @Override
                public Object get(String key) {
                    return s.getAttribute(key);
                }

                @Override
                public void put(String key, Serializable value) {
                    try {
                        s.setAttribute(key, value); // written through by an external session manager
                    } catch (UncheckedIOException e) {
                        throw new SessionStore.Unavailable(e.getMessage(), e);
                    }
                }
            };
        }
    }

    @Override
    protected void service(HttpServletRequest request, HttpServletResponse response) throws IOException {
        long t0 = System.nanoTime();
        Req req = new Req(request);
        String method = request.getMethod();
        String path = req.path();
        int status = 500;
        try {
            Resp r = shop.handle(req);
            status = r.status;
            send(response, r);
        } finally {
            Log.request(method, path, status, (System.nanoTime() - t0) / 1_000_000);
        }
    }

    private static void send(HttpServletResponse response, Resp r) throws IOException {
        response.setStatus(r.status);
        if (r.file == null) {
            response.setHeader("Cache-Control", "no-store");
        }
        for (Map.Entry<String, String> h : r.headers.entrySet()) {
            response.setHeader(h.getKey(), h.getValue());
        }
        if (r.noBody) {
            return;
        }
        response.setContentType(r.contentType);
        if (r.file != null) {
            response.setContentLengthLong(r.length);
            try (OutputStream out = response.getOutputStream()) {
                Files.copy(r.file, out);
            }
            return;
        }
        byte[] body = r.bytes();
        response.setContentLength(body.length);
        try (OutputStream out = response.getOutputStream()) {
            out.write(body);
        }
    }
}
