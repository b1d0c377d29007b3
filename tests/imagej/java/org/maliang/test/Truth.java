package org.maliang.test;

import java.io.BufferedReader;
import java.io.FileReader;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** A plain CSV reader (independent of the library under test) and the ground-truth match statistics. */
public final class Truth {
    private Truth() { }

    /** Column name (quotes stripped) -> values. */
    public static Map<String, double[]> readCsv(String path) throws IOException {
        BufferedReader r = new BufferedReader(new FileReader(path));
        try {
            String[] header = r.readLine().split(",");
            List<double[]> rows = new ArrayList<double[]>();
            for (String line; (line = r.readLine()) != null; ) {
                if (line.isEmpty()) continue;
                String[] f = line.split(",");
                double[] v = new double[header.length];
                for (int i = 0; i < header.length; i++) v[i] = Double.parseDouble(f[i]);
                rows.add(v);
            }
            Map<String, double[]> out = new HashMap<String, double[]>();
            for (int c = 0; c < header.length; c++) {
                double[] col = new double[rows.size()];
                for (int i = 0; i < col.length; i++) col[i] = rows.get(i)[c];
                out.put(header[c].replace("\"", "").trim(), col);
            }
            return out;
        } finally {
            r.close();
        }
    }

    public static final class Match {
        public int truth, found, matched;
        public double rmseX, rmseY, crlbX, crlbY;
        public double recall() { return matched / (double) truth; }
        @Override public String toString() {
            return String.format("truth %d, found %d, matched %d (recall %.4f); RMSE x %.3f y %.3f nm; sqrt(mean CRLB) x %.3f y %.3f nm",
                    truth, found, matched, recall(), rmseX, rmseY, crlbX, crlbY);
        }
    }

    /** Greedy nearest matching within {@code radiusNm}, frame by frame; RMSE and sqrt(mean(uncertainty^2)) over matches. */
    public static Match match(Map<String, double[]> truth, Map<String, double[]> locs, double radiusNm) {
        Match m = new Match();
        double[] tf = truth.get("frame"), tx = truth.get("x [nm]"), ty = truth.get("y [nm]");
        double[] lf = locs.get("frame"), lx = locs.get("x [nm]"), ly = locs.get("y [nm]");
        double[] ux = locs.get("uncertainty_x [nm]"), uy = locs.get("uncertainty_y [nm]");
        m.truth = tf.length; m.found = lf.length;
        Map<Integer, List<Integer>> byFrame = new HashMap<Integer, List<Integer>>();
        for (int i = 0; i < tf.length; i++) {
            List<Integer> l = byFrame.get((int) tf[i]);
            if (l == null) byFrame.put((int) tf[i], l = new ArrayList<Integer>());
            l.add(i);
        }
        boolean[] used = new boolean[tf.length];
        double sx = 0, sy = 0, cx = 0, cy = 0;
        for (int j = 0; j < lf.length; j++) {
            List<Integer> cand = byFrame.get((int) lf[j]);
            if (cand == null) continue;
            int best = -1; double bd = radiusNm;
            for (int i : cand) {
                if (used[i]) continue;
                double d = Math.hypot(lx[j] - tx[i], ly[j] - ty[i]);
                if (d < bd) { bd = d; best = i; }
            }
            if (best < 0) continue;
            used[best] = true;
            m.matched++;
            sx += (lx[j] - tx[best]) * (lx[j] - tx[best]);
            sy += (ly[j] - ty[best]) * (ly[j] - ty[best]);
            cx += ux[j] * ux[j]; cy += uy[j] * uy[j];
        }
        m.rmseX = Math.sqrt(sx / m.matched); m.rmseY = Math.sqrt(sy / m.matched);
        m.crlbX = Math.sqrt(cx / m.matched); m.crlbY = Math.sqrt(cy / m.matched);
        return m;
    }
}
