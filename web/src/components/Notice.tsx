import type { ReactNode } from 'react';

/**
 * Render a message box. Errors use role="alert" so that screen readers read them at once, and
 * success and information use role="status".
 */
export function Notice({
  kind,
  title,
  children,
  id,
}: {
  kind: 'error' | 'success' | 'info' | 'warning';
  title?: string;
  children?: ReactNode;
  id?: string;
}) {
  return (
    <div className={`notice notice--${kind}`} role={kind === 'error' ? 'alert' : 'status'} id={id}>
      {title ? <p className="notice__title">{title}</p> : null}
      {children}
    </div>
  );
}
