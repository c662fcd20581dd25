import { forwardRef, useEffect, useImperativeHandle, useRef, useState, type ReactNode, type UIEvent } from "react";

export interface VirtualListHandle {
  scrollToEnd(): void;
  element(): HTMLDivElement | null;
}

/** Renders only the rows in view (plus a margin), so 100,000 rows cost what 50 do. Rows have one fixed height. */
export const VirtualList = forwardRef<
  VirtualListHandle,
  {
    count: number;
    rowHeight: number;
    height: number;
    renderRow: (index: number) => ReactNode;
    /** atEnd: the last row is in view; movedUp: the user scrolled towards the top (never true for our own scrolls). */
    onScroll?: (atEnd: boolean, movedUp: boolean) => void;
    /** Keep the last row in view when the list is resized or shown again (a hidden tab). */
    stick?: boolean;
    label: string;
  }
>(function VirtualList({ count, rowHeight, height, renderRow, onScroll, stick, label }, ref) {
  const box = useRef<HTMLDivElement>(null);
  const lastTop = useRef(0);
  const sticky = useRef(stick);
  sticky.current = stick;
  const [top, setTop] = useState(0);
  const [view, setView] = useState(height);

  useImperativeHandle(ref, () => ({
    scrollToEnd() {
      const el = box.current;
      if (el) {
        el.scrollTop = count * rowHeight;
        setTop(Math.max(0, count * rowHeight - view));
      }
    },
    element: () => box.current,
  }));

  useEffect(() => {
    const el = box.current;
    if (!el || typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(() => {
      setView(el.clientHeight || height);
      if (sticky.current) el.scrollTop = el.scrollHeight;
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, [height]);

  const handle = (e: UIEvent<HTMLDivElement>) => {
    const el = e.currentTarget;
    // Lines can arrive between our own scroll to the end and its event: only a smaller scrollTop means the user.
    const movedUp = el.scrollTop < lastTop.current - 1;
    lastTop.current = el.scrollTop;
    setTop(el.scrollTop);
    onScroll?.(el.scrollTop + el.clientHeight >= el.scrollHeight - rowHeight * 2, movedUp);
  };

  const overscan = 20;
  const first = Math.max(0, Math.floor(top / rowHeight) - overscan);
  const last = Math.min(count, Math.ceil((top + view) / rowHeight) + overscan);
  const rows: ReactNode[] = [];
  for (let i = first; i < last; i++) {
    rows.push(
      <div key={i} className="vrow" style={{ top: i * rowHeight, height: rowHeight }}>
        {renderRow(i)}
      </div>,
    );
  }
  return (
    <div ref={box} className="vlist" style={{ height }} onScroll={handle} role="log" aria-label={label} tabIndex={0}>
      <div style={{ height: count * rowHeight, position: "relative" }}>{rows}</div>
    </div>
  );
});
