package org.maliang.test;

import org.junit.runner.Description;
import org.junit.runner.JUnitCore;
import org.junit.runner.Result;
import org.junit.runner.notification.Failure;
import org.junit.runner.notification.RunListener;

/** Runs the given JUnit classes, prints one line per test and, last, "JAVA-TESTS: N passed, M failed". */
public class RunAll {
    public static void main(String[] args) throws Exception {
        Class<?>[] classes = new Class<?>[args.length];
        for (int i = 0; i < args.length; i++) classes[i] = Class.forName(args[i]);
        JUnitCore core = new JUnitCore();
        core.addListener(new RunListener() {
            long t0;
            boolean failed;
            @Override public void testStarted(Description d) { t0 = System.nanoTime(); failed = false; }
            @Override public void testFailure(Failure f) {
                failed = true;
                System.out.println("FAIL " + f.getDescription().getClassName() + "." + f.getDescription().getMethodName() + ": " + f.getMessage());
                System.out.println(f.getTrace());
            }
            @Override public void testFinished(Description d) {
                if (!failed) System.out.printf("ok   %s.%s (%.1f s)%n", d.getClassName().replace("org.maliang.test.", ""), d.getMethodName(), (System.nanoTime() - t0) / 1e9);
            }
        });
        Result r = core.run(classes);
        int failed = r.getFailureCount(), passed = r.getRunCount() - failed;
        System.out.println("JAVA-TESTS: " + passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }
}
