package dev.jlens.diff;

import tech.tablesaw.api.BooleanColumn;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * How well model-diffing methods surface a planted behaviour, beside what they wrongly flag in a control finetune
 * (same data and run, nothing planted). Each entry is one method on one finetune: a statistic where higher means
 * "points at the planted behaviour", its value on the finetune, the same statistic measured on the control against
 * the same behaviour's contexts, and the threshold above which the method counts as having flagged it. So
 * {@code found = value >= threshold} and {@code false_alarm = control >= threshold}, with the statistic and how
 * directly the method names the behaviour written beside them.
 */
public final class Scorecard {
    /** One method on one finetune. */
    public record Entry(String method, String finetune, String statistic, double value, double control,
                        double threshold, String directness) {
        public Entry {
            Objects.requireNonNull(method, "method");
            Objects.requireNonNull(finetune, "finetune");
            Objects.requireNonNull(statistic, "statistic");
            Objects.requireNonNull(directness, "directness");
            if (Double.isNaN(threshold)) throw new IllegalArgumentException("threshold of " + method + " is NaN");
        }

        /** The method flagged the planted behaviour (NaN values count as not found). */
        public boolean found() {
            return value >= threshold;
        }

        /** The method flagged the same thing in the control (NaN counts as no alarm). */
        public boolean falseAlarm() {
            return control >= threshold;
        }
    }

    private final List<Entry> entries = new ArrayList<>();

    /** Adds one method's result on one finetune; returns this scorecard. */
    public Scorecard add(String method, String finetune, String statistic, double value, double control,
                         double threshold, String directness) {
        entries.add(new Entry(method, finetune, statistic, value, control, threshold, directness));
        return this;
    }

    /** The entries, in the order added. */
    public List<Entry> entries() {
        return List.copyOf(entries);
    }

    /** Entries whose method found the planted behaviour. */
    public long foundCount() {
        return entries.stream().filter(Entry::found).count();
    }

    /** Entries whose method also flagged the control. */
    public long falseAlarmCount() {
        return entries.stream().filter(Entry::falseAlarm).count();
    }

    /** One row per entry: method, finetune, statistic, value, control, threshold, found, false_alarm, directness. */
    public Table toTable() {
        StringColumn method = StringColumn.create("method"), finetune = StringColumn.create("finetune"),
                statistic = StringColumn.create("statistic"), directness = StringColumn.create("how directly");
        DoubleColumn value = DoubleColumn.create("value"), control = DoubleColumn.create("control"),
                threshold = DoubleColumn.create("threshold");
        BooleanColumn found = BooleanColumn.create("found"), alarm = BooleanColumn.create("false alarm");
        for (Entry e : entries) {
            method.append(e.method());
            finetune.append(e.finetune());
            statistic.append(e.statistic());
            value.append(e.value());
            control.append(e.control());
            threshold.append(e.threshold());
            found.append(e.found());
            alarm.append(e.falseAlarm());
            directness.append(e.directness());
        }
        return Table.create(String.format(Locale.ROOT, "model-diffing scorecard: %d of %d found, %d false alarms",
                foundCount(), entries.size(), falseAlarmCount()), method, finetune, statistic, value, control,
                threshold, found, alarm, directness);
    }

    @Override
    public String toString() {
        return toTable().print();
    }
}
