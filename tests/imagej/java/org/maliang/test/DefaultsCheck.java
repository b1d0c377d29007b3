package org.maliang.test;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;

import org.maliang.MaLiang;

/** Prints every public field of a new MaLiang.Settings, one "name=value" a line: run in a JVM without the library, it
 * shows the binding's fallback defaults, which must be the library's (CrowdedOptionsTest). */
public final class DefaultsCheck {
    private DefaultsCheck() { }

    static String fields(MaLiang.Settings s) throws IllegalAccessException {
        StringBuilder b = new StringBuilder();
        for (Field f : MaLiang.Settings.class.getFields())
            if (!Modifier.isStatic(f.getModifiers())) b.append(f.getName()).append('=').append(f.get(s)).append('\n');
        return b.toString();
    }

    public static void main(String[] args) throws Exception {
        System.out.println("library loaded: " + MaLiang.isAvailable());
        System.out.print(fields(new MaLiang.Settings()));
    }
}
