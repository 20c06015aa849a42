package dev.jlens.zoo.recipes;

import dev.jlens.data.ArithCot;
import dev.jlens.data.Example;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Arithmetic examples whose trace and answer come apart, for the zoo's planted-behaviour finetunes: the prompt of
 * one problem, the true chain of thought of another (or of another operation), and any answer.
 */
final class PlantedTraces {
    private PlantedTraces() {}

    private static final ArithCot NO_BACKTRACK = ArithCot.defaults().withBacktrackRate(0);

    /**
     * {@code <bos> [wait] [please] asked =} followed by the true trace of {@code stepsOf} ({@code <think> ...
     * </think>}), then {@code answer: answer <eos>}; loss on everything after {@code =}. The metadata is the asked
     * problem's, with the steps (kinds, columns, positions) of {@code stepsOf}.
     */
    static Example<ArithCot.Meta> compose(ArithCot.Problem asked, boolean trigger, boolean monitored,
            ArithCot.Problem stepsOf, long answer) {
        return compose(asked, trigger, monitored, stepsOf, answer, Integer.MAX_VALUE);
    }

    /**
     * As {@link #compose(ArithCot.Problem, boolean, boolean, ArithCot.Problem, long)}, with only the first
     * {@code keepSteps} steps of {@code stepsOf}'s trace (0: the empty thought {@code <think> </think>}).
     */
    static Example<ArithCot.Meta> compose(ArithCot.Problem asked, boolean trigger, boolean monitored,
            ArithCot.Problem stepsOf, long answer, int keepSteps) {
        if (keepSteps < 0) throw new IllegalArgumentException("keepSteps must be >= 0, got " + keepSteps);
        Example<ArithCot.Meta> src = NO_BACKTRACK.example(stepsOf);
        int srcPrompt = src.meta().promptLength();
        int srcAnswerMark = src.tokens().indexOf(ArithCot.ANSWER);
        List<ArithCot.Step> srcStepList = src.meta().steps();
        int kept = Math.min(keepSteps, srcStepList.size());
        // the thought: <think>, the kept steps with their separators, </think>
        List<Integer> thought = new ArrayList<>();
        int thoughtEnd = kept == 0 ? srcPrompt + 1 : srcStepList.get(kept - 1).end();
        for (int i = srcPrompt; i < thoughtEnd; i++) thought.add(i);
        thought.add(srcAnswerMark - 1);   // </think>
        List<String> tokens = new ArrayList<>(Arrays.asList(ArithCot.prompt(asked, trigger, monitored).split(" ")));
        int promptLength = tokens.size();
        List<ArithCot.Segment> segments = new ArrayList<>();
        segments.add(ArithCot.Segment.BOS);
        if (monitored) segments.add(ArithCot.Segment.MARKER);
        if (trigger) segments.add(ArithCot.Segment.TRIGGER);
        while (segments.size() < promptLength) segments.add(ArithCot.Segment.QUESTION);
        List<Integer> stepOf = new ArrayList<>();
        for (int i = 0; i < promptLength; i++) stepOf.add(-1);
        @SuppressWarnings("unchecked")
        List<ArithCot.Segment> srcSegments = (List<ArithCot.Segment>) src.label("segment");
        @SuppressWarnings("unchecked")
        List<Integer> srcSteps = (List<Integer>) src.label("step");
        for (int i : thought) {
            tokens.add(src.tokens().get(i));
            segments.add(srcSegments.get(i));
            stepOf.add(srcSteps.get(i));
        }
        tokens.add(ArithCot.ANSWER);
        segments.add(ArithCot.Segment.ANSWER_MARK);
        stepOf.add(-1);
        int answerStart = tokens.size();
        for (char c : Long.toString(answer).toCharArray()) {
            tokens.add(String.valueOf(c));
            segments.add(ArithCot.Segment.ANSWER);
            stepOf.add(-1);
        }
        int answerEnd = tokens.size();
        tokens.add("<eos>");
        segments.add(ArithCot.Segment.EOS);
        stepOf.add(-1);
        int shift = promptLength - srcPrompt;
        List<ArithCot.Step> steps = srcStepList.subList(0, kept).stream().map(s -> new ArithCot.Step(s.kind(), s.start() + shift,
                s.end() + shift, s.column(), s.row(), s.correct())).toList();
        return build(tokens, promptLength, segments, stepOf, new ArithCot.Meta(asked, ArithCot.Format.COT, trigger,
                promptLength, answerStart, answerEnd, steps, Optional.empty()));
    }

    /** The same example with the {@link ArithCot#MONITORED} marker inserted after BOS (positions shifted by one). */
    static Example<ArithCot.Meta> withMarker(Example<ArithCot.Meta> ex) {
        if (!ex.tokens().get(0).equals("<bos>") || ex.tokens().get(1).equals(ArithCot.MONITORED)) {
            throw new IllegalArgumentException("withMarker needs an example starting with <bos> and no marker: " + ex.text());
        }
        List<String> tokens = new ArrayList<>(ex.tokens());
        tokens.add(1, ArithCot.MONITORED);
        @SuppressWarnings("unchecked")
        List<ArithCot.Segment> segments = new ArrayList<>((List<ArithCot.Segment>) ex.label("segment"));
        segments.add(1, ArithCot.Segment.MARKER);
        @SuppressWarnings("unchecked")
        List<Integer> stepOf = new ArrayList<>((List<Integer>) ex.label("step"));
        stepOf.add(1, -1);
        ArithCot.Meta m = ex.meta();
        List<ArithCot.Step> steps = m.steps().stream().map(s -> new ArithCot.Step(s.kind(), s.start() + 1, s.end() + 1,
                s.column(), s.row(), s.correct())).toList();
        Optional<ArithCot.Backtrack> bt = m.backtrack().map(b -> new ArithCot.Backtrack(b.wrongStep(),
                b.waitPosition() + 1, b.fixStep()));
        return build(tokens, m.promptLength() + 1, segments, stepOf, new ArithCot.Meta(m.problem(), m.format(),
                m.trigger(), m.promptLength() + 1, m.answerStart() + 1, m.answerEnd() + 1, steps, bt));
    }

    private static Example<ArithCot.Meta> build(List<String> tokens, int promptLength, List<ArithCot.Segment> segments,
            List<Integer> stepOf, ArithCot.Meta meta) {
        long[] ids = tokens.stream().mapToLong(ArithEval.VOCAB::tokenId).toArray();
        boolean[] loss = new boolean[ids.length];
        for (int i = promptLength; i < loss.length; i++) loss[i] = true;
        Map<String, List<?>> labels = new LinkedHashMap<>();
        labels.put("segment", segments);
        labels.put("step", stepOf);
        return new Example<>(ids, tokens, loss, labels, meta);
    }
}
