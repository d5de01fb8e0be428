// A list filter: a labelled select whose first choice, "any", filters nothing.
export function FilterSelect<T extends string>({
  label,
  value,
  choices,
  onChange,
  name = (choice) => choice,
  className,
}: {
  label: string;
  value: T | null;
  /** The values, or [value, what the reader sees] pairs. */
  choices: readonly (T | readonly [T, string])[];
  onChange: (value: T | null) => void;
  /** What the reader sees of a bare value. */
  name?: (choice: T) => string;
  className?: string;
}) {
  return (
    <label className={className}>
      {label}{" "}
      <select value={value ?? ""} onChange={(e) => onChange((e.target.value || null) as T | null)}>
        <option value="">any</option>
        {choices.map((choice) => {
          const [key, shown] = typeof choice === "string" ? [choice as T, name(choice as T)] : choice;
          return (
            <option key={key} value={key}>
              {shown}
            </option>
          );
        })}
      </select>
    </label>
  );
}
