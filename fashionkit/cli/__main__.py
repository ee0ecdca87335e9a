from fashionkit.cli import main

main()
