package store

import (
	"context"

	"github.com/uptrace/bun"
)

// settingRow is a row of settings: a small named value.
type settingRow struct {
	bun.BaseModel `bun:"table:settings,alias:s"`

	Key       string `bun:"key,pk"`
	Value     string `bun:"value"`
	UpdatedAt dbTime `bun:"updated_at"`
}

// Setting reads a small named value; ok is false when it was never set.
func (t *tx) Setting(ctx context.Context, key string) (string, bool, error) {
	var row settingRow
	if err := t.btx.NewSelect().Model(&row).Where("s.key = ?", key).Scan(ctx); err != nil {
		if noRows(err) {
			return "", false, nil
		}
		return "", false, wrap("get setting", err)
	}
	return row.Value, true, nil
}

// PutSetting upserts a small named value.
func (t *tx) PutSetting(ctx context.Context, key, value string) error {
	if err := t.writable("put setting"); err != nil {
		return err
	}
	row := &settingRow{Key: key, Value: value, UpdatedAt: newTime(t.db.now())}
	_, err := t.btx.NewInsert().Model(row).
		On("CONFLICT (key) DO UPDATE").
		Set("value = EXCLUDED.value").
		Set("updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	return wrap("put setting", err)
}
