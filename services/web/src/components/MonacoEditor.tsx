import { useEffect, useRef } from "react";
import { monaco } from "../monaco";

export interface Marker {
  line: number;
  message: string;
  severity: "error" | "warning";
}

/** One Monaco editor showing one model per file (each keeps its own undo history); markers on the current one. */
export default function MonacoEditor({
  files,
  current,
  onChange,
  markers,
  onSave,
}: {
  files: { name: string; language: string; value: string; readOnly?: boolean }[];
  current: string;
  onChange: (name: string, value: string) => void;
  markers: Marker[];
  onSave: () => void;
}) {
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<monaco.editor.IStandaloneCodeEditor | null>(null);
  const models = useRef(new Map<string, monaco.editor.ITextModel>());
  const save = useRef(onSave);
  save.current = onSave;
  const change = useRef(onChange);
  change.current = onChange;

  useEffect(() => {
    if (!host.current) return;
    const ed = monaco.editor.create(host.current, {
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 13,
      scrollBeyondLastLine: false,
      ariaLabel: "File editor",
      tabSize: 2,
    });
    ed.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.KeyS, () => save.current());
    editor.current = ed;
    const all = models.current;
    return () => {
      ed.dispose();
      all.forEach((m) => m.dispose());
      all.clear();
    };
  }, []);

  // Keep one model per file. Replace a model's text only when the saved text itself changed (a save, or a
  // regeneration), never because the page reloaded the same deployment: that would wipe the user's edits.
  const lastSaved = useRef(new Map<string, string>());
  useEffect(() => {
    for (const f of files) {
      let m = models.current.get(f.name);
      if (!m) {
        m = monaco.editor.createModel(f.value, f.language, monaco.Uri.parse(`file:///${f.name}`));
        const name = f.name;
        m.onDidChangeContent(() => change.current(name, models.current.get(name)!.getValue()));
        models.current.set(f.name, m);
      } else if (lastSaved.current.get(f.name) !== f.value && m.getValue() !== f.value) {
        m.setValue(f.value);
      }
      lastSaved.current.set(f.name, f.value);
    }
  }, [files]);

  useEffect(() => {
    const m = models.current.get(current);
    const ed = editor.current;
    if (!m || !ed) return;
    if (ed.getModel() !== m) ed.setModel(m);
    ed.updateOptions({ readOnly: !!files.find((f) => f.name === current)?.readOnly });
  }, [current, files]);

  useEffect(() => {
    models.current.forEach((m, name) => {
      monaco.editor.setModelMarkers(
        m,
        "portside",
        name === current
          ? markers.map((mk) => ({
              startLineNumber: mk.line,
              endLineNumber: mk.line,
              startColumn: 1,
              endColumn: m.getLineMaxColumn(Math.min(Math.max(mk.line, 1), m.getLineCount())),
              message: mk.message,
              severity: mk.severity === "error" ? monaco.MarkerSeverity.Error : monaco.MarkerSeverity.Warning,
            }))
          : [],
      );
    });
    const first = markers[0];
    if (first && editor.current) editor.current.revealLineInCenter(first.line);
  }, [markers, current]);

  return <div ref={host} className="monaco-host" data-testid="monaco-host" />;
}
