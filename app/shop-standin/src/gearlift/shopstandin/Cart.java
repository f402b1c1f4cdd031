package gearlift.shopstandin;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A shopping cart kept in the HTTP session: sku → quantity, in the order items were added. */
final class Cart implements Serializable {
    private static final long serialVersionUID = 1L;
    static final String ATTRIBUTE = "gearlift.cart";
    static final int MAX_LINES = 50;
    static final int MAX_QTY = 1000;

    private final LinkedHashMap<String, Integer> lines = new LinkedHashMap<>();
    /** Set while a checkout of this cart runs in this JVM, so a double submit orders once. */
    private transient boolean checkingOut;

    /** Adds qty of sku; returns null on success, else why not. */
    synchronized String add(String sku, int qty) {
        Integer have = lines.get(sku);
        if (have == null && lines.size() >= MAX_LINES) {
            return "a cart holds at most " + MAX_LINES + " different items";
        }
        int next = (have == null ? 0 : have) + qty;
        if (next > MAX_QTY) {
            return "at most " + MAX_QTY + " of one item per cart";
        }
        lines.put(sku, next);
        return null;
    }

    synchronized boolean remove(String sku) {
        return lines.remove(sku) != null;
    }

    synchronized void clear() {
        lines.clear();
    }

    synchronized Map<String, Integer> snapshot() {
        return new LinkedHashMap<>(lines);
    }

    /** Claims the cart for a checkout; false when one is already running or it is empty. */
    synchronized boolean beginCheckout() {
        if (checkingOut || lines.isEmpty()) {
            return false;
        }
        checkingOut = true;
        return true;
    }

    synchronized boolean checkingOut() {
        return checkingOut;
    }

    /** Ends a checkout; when it succeeded the ordered quantities leave the cart. */
    synchronized void endCheckout(Map<String, Integer> ordered) {
        checkingOut = false;
        if (ordered != null) {
            for (Map.Entry<String, Integer> e : ordered.entrySet()) {
                Integer have = lines.get(e.getKey());
                if (have != null) {
                    int left = have - e.getValue();
                    if (left > 0) {
                        lines.put(e.getKey(), left);
                    } else {
                        lines.remove(e.getKey());
                    }
                }
            }
        }
    }

    synchronized Map<String, Object> toJson() {
        List<Object> items = new ArrayList<>();
        int total = 0;
        for (Map.Entry<String, Integer> e : lines.entrySet()) {
            items.add(Json.obj("sku", e.getKey(), "qty", e.getValue()));
            total += e.getValue();
        }
        return Json.obj("items", items, "lines", lines.size(), "total_qty", total);
    }

    static Map<String, Object> emptyJson() {
        return new Cart().toJson();
    }
}
