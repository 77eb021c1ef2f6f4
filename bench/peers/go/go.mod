module uppercaseecho

go 1.19
