import type { InputHTMLAttributes, Ref } from 'react';

/** The id of a field's error text, for aria-describedby. */
export const errorIdOf = (fieldId: string) => `${fieldId}-error`;

/** Render a labelled text input with an optional hint and its error sentence beside it. */
export function TextField({
  id,
  label,
  hint,
  error,
  inputRef,
  ...input
}: InputHTMLAttributes<HTMLInputElement> & {
  id: string;
  label: string;
  hint?: string;
  error?: string | null | undefined;
  inputRef?: Ref<HTMLInputElement>;
}) {
  const hintId = hint ? `${id}-hint` : null;
  const describedBy = [hintId, error ? errorIdOf(id) : null].filter(Boolean).join(' ');
  return (
    <div className={`field ${error ? 'field--invalid' : ''}`}>
      <label htmlFor={id} className="field__label">
        {label}
        {input.required ? null : <span className="field__optional"> (optional)</span>}
      </label>
      {hint ? (
        <p className="field__hint" id={hintId!}>
          {hint}
        </p>
      ) : null}
      <input
        id={id}
        ref={inputRef}
        className="input"
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy || undefined}
        {...input}
      />
      {error ? <FieldError id={errorIdOf(id)}>{error}</FieldError> : null}
    </div>
  );
}

/** Render the sentence on what is wrong with one field, shown beside it. */
export function FieldError({ id, children }: { id: string; children: string }) {
  return (
    <p className="field__error" id={id}>
      {children}
    </p>
  );
}
